package core

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Quotas in a cluster. The store holds each user's usage across the cluster, including the
// allowances that nodes reserved and have not used yet. A node reserves an allowance in
// chunks (AddUsage with the limits: the store refuses what would pass them) and serves
// writes from it without asking the store; what it frees (deletions, truncations, short
// writes) goes back to its allowance, of which it keeps at most one chunk while the user has
// uploads open on the node and none otherwise, and it gives the whole allowance back
// allowanceLinger after the user's last open upload on the node closes (unless another upload
// opened meanwhile) and when the user's last session on the node ends. The usage a node
// reports is the store's figure less its own unused allowance.
//
// In usage, bytes and files then hold the store's figure as last heard plus the changes
// not pushed yet; usageLink holds the allowance and those changes.

const (
	// maxChunkBytes and maxChunkFiles bound one reservation beyond the need: a chunk is
	// max(need, min(maxChunk, limit/16)), and maxChunk without a limit.
	maxChunkBytes = 64 << 20
	maxChunkFiles = 64
	// allowanceLinger is how long a node keeps the allowance left when the user's last open
	// upload on it closes: a client that uploads file after file (lftp mirror -R, sftp put -r)
	// then reserves once per chunk instead of reserving and giving back for every file. The
	// room it holds meanwhile (at most what one chunk left, a sixteenth of the quota) is
	// refused to other nodes for that second at most; it never lets the quota be passed.
	allowanceLinger = time.Second
)

// usageLink is the cluster side of a user's usage on this node; guarded by usage.mu.
type usageLink struct {
	site           *Site
	user           string
	allowB, allowF int64 // reserved in the store, not used yet
	pendB, pendF   int64 // changes the store has not counted yet (made while it did not answer)
	writers        int   // open uploads counting against this usage
	// linger gives the allowance back allowanceLinger after the last upload closed; nil
	// until the first close.
	linger *time.Timer
	// held is what the store last heard of this node holding part of the usage (see
	// holding): while it does, no node replaces the figure with a count of the storage.
	held bool
	// readAt is when a login on this node last read the store's figure; zero: never.
	readAt time.Time
}

// holding tells whether this node holds part of the user's usage that a count of the
// storage would miss: an allowance not used yet, or uploads in progress (their bytes are not
// under their final names yet). u.mu is held.
func (c *usageLink) holding() bool { return c.writers > 0 || c.allowB > 0 || c.allowF > 0 }

// chunk is how much beyond the need one reservation asks for.
func chunk(limit, maxChunk int64) int64 {
	if limit <= 0 {
		return maxChunk
	}
	return min(maxChunk, limit/16)
}

// reserveClusterLocked serves a reservation from the allowance, reserving more in the store
// when it does not cover it. u.mu is held.
func (u *usage) reserveClusterLocked(bytes, files int64) bool {
	c := u.cl
	needB, needF := max(0, bytes-c.allowB), max(0, files-c.allowF)
	if (needB > 0 || needF > 0) && !u.growLocked(needB, needF) {
		return false
	}
	c.allowB -= bytes
	c.allowF -= files
	return true
}

// growLocked adds at least needB bytes and needF files to the allowance: a chunk if the
// store grants it, else exactly the need; false when that passes the quota. While the store
// does not answer it grants the need from the node's own view (the last figure it heard and
// the changes since), remembering the change to push.
func (u *usage) growLocked(needB, needF int64) bool {
	c := u.cl
	// The chunk also fills the other kind's allowance when it is empty: an upload reserves
	// its file and its first bytes in one call.
	var chunkB, chunkF int64
	if needB > 0 || c.allowB == 0 {
		chunkB = max(needB, chunk(u.maxBytes, maxChunkBytes))
	}
	if needF > 0 || c.allowF == 0 {
		chunkF = max(needF, chunk(u.maxFil, maxChunkFiles))
	}
	if c.site.cl.usable() {
		ctx, cancel := c.site.cl.ctx(context.Background())
		defer cancel()
		ok, err := u.addLocked(ctx, chunkB, chunkF, u.maxBytes, u.maxFil, true)
		if err == nil && !ok && (chunkB != needB || chunkF != needF) {
			chunkB, chunkF = needB, needF
			ok, err = u.addLocked(ctx, needB, needF, u.maxBytes, u.maxFil, true)
		}
		if err == nil {
			if ok {
				c.allowB += chunkB
				c.allowF += chunkF
			} else if !c.holding() {
				// The refused reservation left a hold in the store: the next give-back
				// (with nothing to give) clears it.
				u.scheduleGiveBackLocked()
			}
			return ok
		}
	}
	if (needB > 0 && u.maxBytes > 0 && u.bytes+needB > u.maxBytes) ||
		(needF > 0 && u.maxFil > 0 && u.files+needF > u.maxFil) {
		return false
	}
	u.bytes += needB
	u.files += needF
	c.pendB += needB
	c.pendF += needF
	c.allowB += needB
	c.allowF += needF
	return true
}

// addLocked pushes the changes not counted yet (without limits: they were made already), then
// adds bytes and files with the limits, and keeps the figure the store returns; held is
// whether the node holds part of the usage once the addition is made (see holding). ok is
// false when the store refused the addition. u.mu is held.
func (u *usage) addLocked(ctx context.Context, bytes, files, maxBytes, maxFiles int64, held bool) (ok bool, err error) {
	c := u.cl
	s := c.site
	if c.pendB != 0 || c.pendF != 0 {
		_, ub, uf, err := s.cl.c.AddUsage(ctx, s.name, c.user, c.pendB, c.pendF, 0, 0, held)
		if err := s.note(err); err != nil {
			return false, fmt.Errorf("pushing quota usage of %s: %w", c.user, err)
		}
		c.pendB, c.pendF = 0, 0
		c.held = held
		u.bytes, u.files = ub, uf
		if bytes == 0 && files == 0 {
			return true, nil // the figure is fresh
		}
	}
	ok, ub, uf, err := s.cl.c.AddUsage(ctx, s.name, c.user, bytes, files, maxBytes, maxFiles, held)
	if err := s.note(err); err != nil {
		return false, fmt.Errorf("quota usage of %s: %w", c.user, err)
	}
	c.held = held
	u.bytes, u.files = ub, uf
	return ok, nil
}

// releaseClusterLocked returns freed usage to the allowance, and gives the store what goes
// beyond one chunk of it while uploads are open on this node, all of it otherwise (a removal
// makes room on every node at once). u.mu is held.
func (u *usage) releaseClusterLocked(bytes, files int64) {
	c := u.cl
	c.allowB += bytes
	c.allowF += files
	var keepB, keepF int64
	if c.writers > 0 {
		keepB, keepF = chunk(u.maxBytes, maxChunkBytes), chunk(u.maxFil, maxChunkFiles)
	}
	exB, exF := max(0, c.allowB-keepB), max(0, c.allowF-keepF)
	if exB > 0 || exF > 0 {
		u.giveBackLocked(exB, exF)
	}
}

// giveBackLocked gives bytes and files of the allowance back to the store; while the store
// does not answer, the change is remembered for the next successful call. u.mu is held.
func (u *usage) giveBackLocked(bytes, files int64) {
	c := u.cl
	c.allowB -= bytes
	c.allowF -= files
	if c.site.cl.usable() {
		ctx, cancel := c.site.cl.ctx(context.Background())
		_, err := u.addLocked(ctx, -bytes, -files, 0, 0, c.holding())
		cancel()
		if err == nil {
			return
		}
	}
	u.bytes = max(0, u.bytes-bytes)
	u.files = max(0, u.files-files)
	c.pendB -= bytes
	c.pendF -= files
}

// settle gives the whole unused allowance back (the user's last upload or session on this
// node ended).
func (u *usage) settle() {
	if u == nil || u.cl == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.cl.allowB > 0 || u.cl.allowF > 0 || (u.cl.held && u.cl.writers == 0) {
		u.giveBackLocked(u.cl.allowB, u.cl.allowF)
	}
}

// writerOpened and writerClosed count the open uploads that charge this usage; when the
// last one closes, the allowance goes back to the store.
func (u *usage) writerOpened() {
	if u == nil || u.cl == nil {
		return
	}
	u.mu.Lock()
	u.cl.writers++
	u.mu.Unlock()
}

func (u *usage) writerClosed() {
	if u == nil || u.cl == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.cl.writers--
	if u.cl.writers > 0 || (u.cl.allowB <= 0 && u.cl.allowF <= 0 && !u.cl.held) {
		return
	}
	u.scheduleGiveBackLocked()
}

// scheduleGiveBackLocked gives the allowance back, and clears the node's hold in the store,
// allowanceLinger from now unless an upload opens meanwhile. u.mu is held.
func (u *usage) scheduleGiveBackLocked() {
	if u.cl.linger == nil {
		u.cl.linger = time.AfterFunc(allowanceLinger, u.lingered)
	} else {
		u.cl.linger.Reset(allowanceLinger)
	}
}

// lingered gives the allowance back once no upload reopened it within allowanceLinger (the
// session's end may have given it back already); with nothing left to give, it still tells
// the store that this node no longer holds anything.
func (u *usage) lingered() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.cl.writers == 0 && (u.cl.allowB > 0 || u.cl.allowF > 0 || u.cl.held) {
		u.giveBackLocked(u.cl.allowB, u.cl.allowF)
	}
}

// refresh reads the store's figure (and pushes the changes not counted yet), for a report of
// the usage; while the store does not answer the node's own view stands.
func (u *usage) refresh(ctx context.Context) {
	if u == nil || u.cl == nil || !u.cl.site.cl.usable() {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	cctx, cancel := u.cl.site.cl.ctx(ctx)
	defer cancel()
	_, _ = u.addLocked(cctx, 0, 0, 0, 0, u.cl.held)
}

// usageRecountAfter is how long a node takes the store's figure of a user's usage as it
// last read it at a login, and how old the stored count of the storage may be before a login
// counts the storage again (which catches files changed outside wharf, and what a dead node
// held): at most once a minute per user and node, instead of at every login, whose round trip
// (and scan of the storage: a listing of a whole prefix on an object store) a client that
// logs in for each file would pay every time.
const usageRecountAfter = time.Minute

// clusterUsage sets up the usage record of a user who logged in on a site of a cluster.
// The login itself needs no answer from the store: the store's figure is what decides every
// reservation (AddUsage refuses what would pass the quota), and the node's copy only serves
// reports of the usage. So a login reads the store's figure only when this node has not read
// it for usageRecountAfter; it then also counts the storage again when the stored count is
// older than that and no live node holds part of the usage, and the count replaces the
// figure unless the figure changed meanwhile (SetUsage with the version read). While the
// store does not answer, the node's own view stands, or its own count of the storage when it
// has none (see quotaUsage).
func (s *Site) clusterUsage(ctx context.Context, u *User, scan func() (int64, int64, error)) (*usage, error) {
	s.mu.Lock()
	rec, known := s.usage[u.ID]
	if !known {
		rec = &usage{cl: &usageLink{site: s, user: u.ID}}
		s.usage[u.ID] = rec
	}
	live := s.perUser[u.ID]
	s.mu.Unlock()
	rec.mu.Lock()
	rec.maxBytes, rec.maxFil = u.QuotaBytes, u.QuotaFiles
	if !rec.cl.readAt.IsZero() && s.now().Sub(rec.cl.readAt) < usageRecountAfter {
		rec.mu.Unlock()
		return rec, nil
	}
	st, err := rec.readLocked(ctx)
	pending := rec.cl.pendB != 0 || rec.cl.pendF != 0
	rec.mu.Unlock()
	if err != nil {
		if known && live > 1 {
			return rec, nil // another session here keeps the node's view current
		}
		b, f, err := scan()
		if err != nil {
			return nil, err
		}
		rec.mu.Lock()
		rec.bytes, rec.files = b, f
		rec.mu.Unlock()
		return rec, nil
	}
	if st.Held || pending || s.now().Sub(st.CountedAt) < usageRecountAfter {
		return rec, nil
	}
	b, f, err := scan()
	if err != nil {
		s.log.Warn("counting the user's storage for the quota failed; the cluster's figure stands",
			"user", u.ID, "err", err.Error())
		return rec, nil
	}
	cctx, cancel := s.cl.ctx(ctx)
	defer cancel()
	replaced, err := s.cl.c.SetUsage(cctx, s.name, u.ID, b, f, st.Version)
	if err = s.note(err); err != nil {
		s.log.Warn("cluster store did not take the user's fresh quota usage; it keeps its figure",
			"user", u.ID, "err", err.Error())
	}
	if err == nil && replaced {
		rec.mu.Lock()
		if rec.cl.pendB == 0 && rec.cl.pendF == 0 && !rec.cl.holding() {
			rec.bytes, rec.files = b, f
		}
		rec.mu.Unlock()
	}
	return rec, nil
}

// readLocked reads the store's figure (pushing the changes not counted yet first) into the
// record. u.mu is held.
func (u *usage) readLocked(ctx context.Context) (StoredUsage, error) {
	c := u.cl
	s := c.site
	if !s.cl.usable() {
		return StoredUsage{}, errors.New("the cluster store is not reachable")
	}
	cctx, cancel := s.cl.ctx(ctx)
	defer cancel()
	if c.pendB != 0 || c.pendF != 0 {
		if _, err := u.addLocked(cctx, 0, 0, 0, 0, c.holding()); err != nil {
			return StoredUsage{}, err
		}
	}
	st, err := s.cl.c.ReadUsage(cctx, s.name, c.user)
	if err = s.note(err); err != nil {
		return StoredUsage{}, fmt.Errorf("quota usage of %s: %w", c.user, err)
	}
	u.bytes, u.files = st.Bytes, st.Files
	c.readAt = s.now()
	return st, nil
}

// pushUsage pushes the quota changes made while the store did not answer, and this node's
// hold where the store missed its change (a hold left in the store would keep any count of
// the storage from replacing the user's figure) (SyncCluster).
func (s *Site) pushUsage(ctx context.Context) error {
	s.mu.Lock()
	recs := make([]*usage, 0, len(s.usage))
	for _, u := range s.usage {
		recs = append(recs, u)
	}
	s.mu.Unlock()
	for _, u := range recs {
		if u.cl == nil {
			continue
		}
		u.mu.Lock()
		var err error
		if u.cl.pendB != 0 || u.cl.pendF != 0 || u.cl.held != u.cl.holding() {
			cctx, cancel := s.cl.ctx(ctx)
			_, err = u.addLocked(cctx, 0, 0, 0, 0, u.cl.holding())
			cancel()
		}
		u.mu.Unlock()
		if err != nil {
			return fmt.Errorf("site %q: %w", s.name, err)
		}
	}
	return nil
}
