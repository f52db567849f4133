package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/wharf-project/wharf/core"
)

// The core.Cluster methods: what the sites of all nodes share.

// janitorLock lets one node at a time clean up ("wharf" and 2).
const janitorLock int64 = 0x7768617266_000002

// lockKey is the transaction advisory lock of one (site, user)'s session count.
func lockKey(site, user string) int64 {
	h := fnv.New64a()
	h.Write([]byte("session\x00" + site + "\x00" + user))
	return int64(h.Sum64())
}

func keyText(k netip.Prefix) string { return k.Masked().String() }

func nullTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

func fromNull(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time
}

// Strike records a strike against key at the given time and returns the key's strikes
// within window on every node, this one included. One round trip.
func (s *Store) Strike(ctx context.Context, site string, key netip.Prefix, at time.Time, window time.Duration) (int, error) {
	var n int
	err := s.call(ctx, "record a strike", func(ctx context.Context) error {
		// The count's snapshot does not see the row the same statement inserts: + 1.
		return s.pool.QueryRow(ctx, `WITH ins AS (INSERT INTO strikes (site, key, at) VALUES ($1, $2, $3))
			SELECT count(*) + 1 FROM strikes WHERE site = $1 AND key = $2 AND at > $3::timestamptz - $4::interval`,
			site, keyText(key), at, window).Scan(&n)
	})
	return n, err
}

// UpdateBan changes the ban record of key under the row's lock, stores it, clears the key's
// strikes and announces it, in one transaction.
func (s *Store) UpdateBan(ctx context.Context, site string, key netip.Prefix, change func(core.BanRecord) core.BanRecord) (core.BanRecord, error) {
	var rec core.BanRecord
	k := keyText(key)
	err := s.call(ctx, "update a ban", func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			// Insert-or-touch takes the row lock whether or not the key has a record yet.
			var cur core.BanRecord
			var until, last pgtype.Timestamptz
			if err := tx.QueryRow(ctx, `INSERT INTO bans (site, key) VALUES ($1, $2)
				ON CONFLICT (site, key) DO UPDATE SET offences = bans.offences
				RETURNING until, offences, last_offence`, site, k).Scan(&until, &cur.Offences, &last); err != nil {
				return err
			}
			cur.Until, cur.LastOffence = fromNull(until), fromNull(last)
			rec = change(cur)
			b := &pgx.Batch{}
			b.Queue("UPDATE bans SET until = $3, offences = $4, last_offence = $5 WHERE site = $1 AND key = $2",
				site, k, nullTime(rec.Until), rec.Offences, nullTime(rec.LastOffence))
			b.Queue("DELETE FROM strikes WHERE site = $1 AND key = $2", site, k)
			for _, p := range banPayloads(site, []core.ClusterBan{{Key: key.Masked(), BanRecord: rec}}) {
				b.Queue("SELECT pg_notify('wharf_bans', $1)", p)
			}
			return tx.SendBatch(ctx, b).Close()
		})
	})
	return rec, err
}

// PutBans stores records made while the store was unreachable, each only where it is later
// than the stored one, and announces those stored.
func (s *Store) PutBans(ctx context.Context, site string, bans []core.ClusterBan) error {
	latest := map[string]core.ClusterBan{}
	for _, b := range bans {
		k := keyText(b.Key)
		if cur, ok := latest[k]; !ok || b.LastOffence.After(cur.LastOffence) {
			b.Key = b.Key.Masked()
			latest[k] = b
		}
	}
	if len(latest) == 0 {
		return nil
	}
	keys := make([]string, 0, len(latest))
	untils := make([]pgtype.Timestamptz, 0, len(latest))
	offences := make([]int32, 0, len(latest))
	lasts := make([]pgtype.Timestamptz, 0, len(latest))
	for k, b := range latest {
		keys, untils = append(keys, k), append(untils, nullTime(b.Until))
		offences, lasts = append(offences, int32(b.Offences)), append(lasts, nullTime(b.LastOffence))
	}
	return s.call(ctx, "store bans", func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `INSERT INTO bans (site, key, until, offences, last_offence)
				SELECT $1, k, u, o, l FROM unnest($2::text[], $3::timestamptz[], $4::int[], $5::timestamptz[]) AS t(k, u, o, l)
				ON CONFLICT (site, key) DO UPDATE SET until = EXCLUDED.until, offences = EXCLUDED.offences, last_offence = EXCLUDED.last_offence
				WHERE bans.last_offence IS NULL OR bans.last_offence < EXCLUDED.last_offence
				RETURNING key`, site, keys, untils, offences, lasts)
			if err != nil {
				return err
			}
			stored, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil || len(stored) == 0 {
				return err
			}
			announce := make([]core.ClusterBan, 0, len(stored))
			for _, k := range stored {
				announce = append(announce, latest[k])
			}
			b := &pgx.Batch{}
			for _, p := range banPayloads(site, announce) {
				b.Queue("SELECT pg_notify('wharf_bans', $1)", p)
			}
			return tx.SendBatch(ctx, b).Close()
		})
	})
}

// LiftBans removes the records of keys (every record of the site when all is set) and
// announces it, in one round trip.
func (s *Store) LiftBans(ctx context.Context, site string, keys []netip.Prefix, all bool) ([]core.ClusterBan, error) {
	texts := make([]string, 0, len(keys))
	for _, k := range keys {
		texts = append(texts, keyText(k))
	}
	if !all && len(texts) == 0 {
		return nil, nil
	}
	var removed []core.ClusterBan
	err := s.call(ctx, "lift bans", func(ctx context.Context) error {
		removed = nil
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM bans WHERE site = $1 AND ($2 OR key = ANY($3::text[]))
			RETURNING key, until, offences, last_offence`, site, all, texts).Query(func(rows pgx.Rows) error {
			var err error
			removed, err = pgx.CollectRows(rows, scanBan)
			return err
		})
		for _, p := range liftPayloads(site, texts, all) {
			b.Queue("SELECT pg_notify('wharf_bans', $1)", p)
		}
		// One batch is one implicit transaction: the lift and its announcement go together.
		return s.pool.SendBatch(ctx, b).Close()
	})
	return removed, err
}

// Bans returns every ban record of the site, expired ones included.
func (s *Store) Bans(ctx context.Context, site string) ([]core.ClusterBan, error) {
	var out []core.ClusterBan
	err := s.call(ctx, "read bans", func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `SELECT key, until, offences, last_offence FROM bans
			WHERE site = $1 ORDER BY key`, site)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanBan)
		return err
	})
	return out, err
}

func scanBan(r pgx.CollectableRow) (core.ClusterBan, error) {
	var k string
	var until, last pgtype.Timestamptz
	var b core.ClusterBan
	if err := r.Scan(&k, &until, &b.Offences, &last); err != nil {
		return b, err
	}
	p, err := netip.ParsePrefix(k)
	if err != nil {
		return b, fmt.Errorf("ban key %q: %w", k, err)
	}
	b.Key, b.Until, b.LastOffence = p, fromNull(until), fromNull(last)
	return b, nil
}

// ClaimSession records a logged-in session unless its user already has max live sessions
// on live nodes (this node's own sessions always count): wharf_claim_session takes the user's
// advisory lock, counts and inserts in one statement, one round trip, and the lock is held
// until the insert commits.
func (s *Store) ClaimSession(ctx context.Context, cs core.ClusterSession, max int) (core.Claim, error) {
	start := cs.Start
	if start.IsZero() {
		start = time.Now()
	}
	var others int
	var claimed bool
	err := s.call(ctx, "claim a session", func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, "SELECT others, claimed FROM wharf_claim_session($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
			lockKey(cs.Site, cs.User), cs.ID, cs.Site, cs.User, s.opts.NodeID, cs.Protocol, cs.RemoteIP, start,
			s.opts.NodeTTL, max).Scan(&others, &claimed)
	})
	if err != nil {
		return core.Claim{}, err
	}
	if !claimed {
		return core.Claim{Others: others}, fmt.Errorf("%w: %d sessions of this user in the cluster (max %d)", core.ErrLimit, others, max)
	}
	return core.Claim{Others: others}, nil
}

// EndSession removes a session's record.
func (s *Store) EndSession(ctx context.Context, site, id string) error {
	return s.call(ctx, "end a session", func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, "DELETE FROM sessions WHERE id = $1 AND site = $2", id, site)
		return err
	})
}

// AddUsage adds to the user's quota usage in one conditional statement: the row's lock
// serialises nodes, a positive addition past a positive limit changes nothing, and usage
// never goes below zero. The same statement records or clears this node's hold.
func (s *Store) AddUsage(ctx context.Context, site, user string, bytes, files, maxBytes, maxFiles int64, held bool) (ok bool, usedBytes, usedFiles int64, err error) {
	err = s.call(ctx, "add quota usage", func(ctx context.Context) error {
		ok, usedBytes, usedFiles = false, 0, 0
		err := s.pool.QueryRow(ctx, `WITH up AS (
				INSERT INTO quota_usage AS q (site, user_name, bytes, files, version)
				SELECT $1, $2, GREATEST($3::bigint, 0), GREATEST($4::bigint, 0), 1
				WHERE NOT (($3::bigint > 0 AND $5::bigint > 0 AND $3::bigint > $5::bigint)
					OR ($4::bigint > 0 AND $6::bigint > 0 AND $4::bigint > $6::bigint))
				ON CONFLICT (site, user_name) DO UPDATE
				SET bytes = GREATEST(q.bytes + $3::bigint, 0), files = GREATEST(q.files + $4::bigint, 0),
					version = q.version + CASE WHEN $3::bigint <> 0 OR $4::bigint <> 0 THEN 1 ELSE 0 END
				WHERE NOT (($3::bigint > 0 AND $5::bigint > 0 AND q.bytes + $3::bigint > $5::bigint)
					OR ($4::bigint > 0 AND $6::bigint > 0 AND q.files + $4::bigint > $6::bigint))
				RETURNING q.bytes, q.files
			), hold AS (
				INSERT INTO quota_holds (site, user_name, node) SELECT $1, $2, $8 WHERE $7::bool
				ON CONFLICT DO NOTHING
			), unhold AS (
				DELETE FROM quota_holds WHERE site = $1 AND user_name = $2 AND node = $8 AND NOT $7::bool
			)
			SELECT true, bytes, files FROM up
			UNION ALL
			SELECT false, bytes, files FROM quota_usage
			WHERE site = $1 AND user_name = $2 AND NOT EXISTS (SELECT 1 FROM up)`,
			site, user, bytes, files, maxBytes, maxFiles, held, s.opts.NodeID).Scan(&ok, &usedBytes, &usedFiles)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // refused, and the user has no usage yet
		}
		return err
	})
	return ok, usedBytes, usedFiles, err
}

// heldByLive is the condition that a live node (this one included) holds part of the usage
// of ($1, $2); $3 is node_ttl and $4 this node.
const heldByLive = `EXISTS (SELECT 1 FROM quota_holds h JOIN nodes n ON n.id = h.node
	WHERE h.site = $1 AND h.user_name = $2 AND (h.node = $4 OR n.last_seen > now() - $3::interval))`

// ReadUsage returns the user's stored usage and whether a live node holds part of it, in one
// round trip.
func (s *Store) ReadUsage(ctx context.Context, site, user string) (core.StoredUsage, error) {
	var st core.StoredUsage
	err := s.call(ctx, "read quota usage", func(ctx context.Context) error {
		var ub, uf, ver *int64
		var counted pgtype.Timestamptz
		if err := s.pool.QueryRow(ctx, `SELECT q.bytes, q.files, q.counted_at, q.version, `+heldByLive+`
			FROM (SELECT 1) AS one LEFT JOIN quota_usage q ON q.site = $1 AND q.user_name = $2`,
			site, user, s.opts.NodeTTL, s.opts.NodeID).Scan(&ub, &uf, &counted, &ver, &st.Held); err != nil {
			return err
		}
		if ub != nil && uf != nil && ver != nil {
			st.Bytes, st.Files, st.Version = *ub, *uf, *ver
		}
		st.CountedAt = fromNull(counted)
		return nil
	})
	if err != nil {
		return core.StoredUsage{}, err
	}
	return st, nil
}

// SetUsage replaces the user's usage with a fresh count of the storage, in one conditional
// statement: only if the stored version is still the one read (no reservation, give-back or
// other count since; 0: no usage stored) and no live node holds part of the usage. A
// concurrent AddUsage holds the row's lock: the update waits for it and then sees the new
// version, so a reservation made in between is never overwritten.
func (s *Store) SetUsage(ctx context.Context, site, user string, bytes, files, version int64) (replaced bool, err error) {
	err = s.call(ctx, "set quota usage", func(ctx context.Context) error {
		replaced = false
		var tag pgconn.CommandTag
		var err error
		if version == 0 {
			tag, err = s.pool.Exec(ctx, `INSERT INTO quota_usage (site, user_name, bytes, files, counted_at, version)
				SELECT $1, $2, $5, $6, now(), 1 WHERE NOT `+heldByLive+`
				ON CONFLICT (site, user_name) DO NOTHING`,
				site, user, s.opts.NodeTTL, s.opts.NodeID, max(bytes, 0), max(files, 0))
		} else {
			tag, err = s.pool.Exec(ctx, `UPDATE quota_usage SET bytes = $5, files = $6, counted_at = now(), version = version + 1
				WHERE site = $1 AND user_name = $2 AND version = $7 AND NOT `+heldByLive,
				site, user, s.opts.NodeTTL, s.opts.NodeID, max(bytes, 0), max(files, 0), version)
		}
		replaced = err == nil && tag.RowsAffected() == 1
		return err
	})
	return replaced, err
}

// Announcements on wharf_bans: JSON, each under PostgreSQL's 8000-byte payload limit.
type banNote struct {
	Site string    `json:"site"`
	Bans []banJSON `json:"bans,omitempty"`
	Lift []string  `json:"lift,omitempty"`
	All  bool      `json:"all,omitempty"`
}

type banJSON struct {
	Key         string    `json:"key"`
	Until       time.Time `json:"until"`
	Offences    int       `json:"offences"`
	LastOffence time.Time `json:"last_offence"`
}

const maxPayload = 7000

func banPayloads(site string, bans []core.ClusterBan) []string {
	var out []string
	n := banNote{Site: site}
	for _, b := range bans {
		n.Bans = append(n.Bans, banJSON{Key: keyText(b.Key), Until: b.Until, Offences: b.Offences, LastOffence: b.LastOffence})
		if len(n.Bans) > 1 && len(mustJSON(n)) > maxPayload {
			last := n.Bans[len(n.Bans)-1]
			n.Bans = n.Bans[:len(n.Bans)-1]
			out = append(out, mustJSON(n))
			n.Bans = []banJSON{last}
		}
	}
	return append(out, mustJSON(n))
}

func liftPayloads(site string, keys []string, all bool) []string {
	if all {
		return []string{mustJSON(banNote{Site: site, All: true})}
	}
	var out []string
	n := banNote{Site: site}
	for _, k := range keys {
		n.Lift = append(n.Lift, k)
		if len(n.Lift) > 1 && len(mustJSON(n)) > maxPayload {
			n.Lift = n.Lift[:len(n.Lift)-1]
			out = append(out, mustJSON(n))
			n.Lift = []string{k}
		}
	}
	return append(out, mustJSON(n))
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain strings, numbers and times always marshal
	}
	return string(b)
}
