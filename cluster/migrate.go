package cluster

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one schema change: migrations/NNNN_name.sql, applied in version order, each
// in its own transaction with the row that records it.
type migration struct {
	version int
	name    string
	sql     string
}

// errSchemaNewer marks a store whose schema a newer wharf made: this binary must not touch it.
var errSchemaNewer = errors.New("the cluster store's schema is newer than this wharf knows")

// migrateLock is the session-level advisory lock that serialises the migrations of nodes
// that start together ("wharf" and 1). CockroachDB accepts pg_advisory_lock but does not
// lock: there, run `wharf cluster migrate` once before starting the nodes.
const migrateLock int64 = 0x7768617266_000001

func loadMigrations(files fs.FS) ([]migration, error) {
	names, err := fs.Glob(files, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, n := range names {
		base := strings.TrimSuffix(n[len("migrations/"):], ".sql")
		num, label, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || label == "" {
			return nil, fmt.Errorf("migration %s: the name must be NNNN_what.sql", n)
		}
		b, err := fs.ReadFile(files, n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: label, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %04d_%s: versions must run 1, 2, 3… without gaps", m.version, m.name)
		}
	}
	return ms, nil
}

// migrate applies the migrations the store lacks, under migrateLock held by conn, and
// returns the versions applied and the schema version after.
func migrate(ctx context.Context, conn *pgx.Conn, log *slog.Logger) (applied []int, version int, err error) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return nil, 0, err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLock); err != nil {
		return nil, 0, fmt.Errorf("take the migration lock: %w", err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		if _, uerr := conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", migrateLock); uerr != nil {
			// The lock is the session's: ending the session releases it.
			_ = conn.Close(uctx)
			if err == nil {
				err = fmt.Errorf("release the migration lock: %w", uerr)
			}
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS wharf_schema (
		version integer PRIMARY KEY,
		name    text NOT NULL,
		applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, 0, fmt.Errorf("create the schema version table: %w", err)
	}
	if err := conn.QueryRow(ctx, "SELECT COALESCE(max(version), 0) FROM wharf_schema").Scan(&version); err != nil {
		return nil, 0, fmt.Errorf("read the schema version: %w", err)
	}
	if known := ms[len(ms)-1].version; version > known {
		return nil, version, fmt.Errorf("%w: the store is at version %d, this wharf knows up to %d; upgrade wharf", errSchemaNewer, version, known)
	}
	for _, m := range ms[version:] {
		start := time.Now()
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO wharf_schema (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return applied, version, fmt.Errorf("apply schema migration %04d_%s: %w", m.version, m.name, err)
		}
		applied, version = append(applied, m.version), m.version
		log.Info("cluster store: schema migration applied", "version", m.version, "name", m.name, "took", time.Since(start).Round(time.Millisecond))
	}
	return applied, version, nil
}

// schemaVersion reads the store's schema version; 0 when it has none yet.
func schemaVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass('wharf_schema') IS NOT NULL").Scan(&exists); err != nil {
		return 0, err
	}
	if !exists {
		return 0, nil
	}
	var v int
	err := q.QueryRow(ctx, "SELECT COALESCE(max(version), 0) FROM wharf_schema").Scan(&v)
	return v, err
}
