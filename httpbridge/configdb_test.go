package httpbridge

import (
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/litefstest"
)

// txidCookie returns the TXID cookie of w's response, or nil.
func txidCookie(w *http.Response) *http.Cookie {
	for _, c := range w.Cookies() {
		if c.Name == DefaultTXIDCookie {
			return c
		}
	}
	return nil
}

// TestCookieCoversConfigDBEveryWay: the cookie is at or above Config.DB's
// last commit made by the request, and a request that did not write
// Config.DB gets none, on a real primary, for writes that reach Config.DB
// (or not) by other routes than its own pool.
func TestCookieCoversConfigDBEveryWay(t *testing.T) {
	cluster := litefstest.StartCluster(t, 1)
	primary := cluster.Primary()
	pdb := openFollowing(t, primary)
	_, err := pdb.Exec("CREATE TABLE posts(v TEXT)")
	require.NoError(t, err)
	auditPath := filepath.Join(primary.MountDir(), "audit.db")
	audit, err := sql.Open(litefs.DriverName, litefstest.DSN(auditPath)+"&_litefs_api="+primary.URL())
	require.NoError(t, err)
	t.Cleanup(func() { audit.Close() })
	_, err = audit.Exec("CREATE TABLE audit(v TEXT)")
	require.NoError(t, err)
	// Config.DB opened through a symlink to its file, as a deployment
	// keeping /data/app.db -> /litefs/app.db would.
	link := filepath.Join(t.TempDir(), "app.db")
	require.NoError(t, os.Symlink(primary.DBPath(), link))
	ldb, err := sql.Open(litefs.DriverName, litefstest.DSN(link)+"&_litefs_api="+primary.URL())
	require.NoError(t, err)
	t.Cleanup(func() { ldb.Close() })
	require.NoError(t, ldb.Ping())

	// viaAttach runs stmts on one connection of db with path attached as x.
	viaAttach := func(r *http.Request, db *sql.DB, path string, stmts ...string) error {
		conn, err := db.Conn(r.Context())
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.ExecContext(r.Context(), "ATTACH ? AS x", path); err != nil {
			return err
		}
		defer conn.ExecContext(r.Context(), "DETACH x")
		for _, s := range stmts {
			if _, err := conn.ExecContext(r.Context(), s); err != nil {
				return err
			}
		}
		return nil
	}
	for _, tc := range []struct {
		name         string
		db           *sql.DB // Config.DB
		writesConfig bool
		attached     bool // the handler writes through a database attached to Config.DB's connection
		handle       func(r *http.Request) error
	}{
		{name: "Config.DB written through ATTACH on audit's connection", db: pdb, writesConfig: true, handle: func(r *http.Request) error {
			return viaAttach(r, audit, primary.DBPath(), "INSERT INTO x.posts VALUES ('via attach')")
		}},
		{name: "Config.DB written in a transaction of audit's connection", db: pdb, writesConfig: true, handle: func(r *http.Request) error {
			return viaAttach(r, audit, primary.DBPath(), "BEGIN", "INSERT INTO audit VALUES ('a')", "INSERT INTO x.posts VALUES ('b')", "COMMIT")
		}},
		{name: "Config.DB opened through a symlinked file", db: ldb, writesConfig: true, handle: func(r *http.Request) error {
			_, err := ldb.ExecContext(r.Context(), "INSERT INTO posts VALUES ('via link')")
			return err
		}},
		{name: "Config.DB vacuumed in a string of two statements", db: pdb, writesConfig: true, handle: func(r *http.Request) error {
			_, err := pdb.ExecContext(r.Context(), "SELECT 1; VACUUM")
			return err
		}},
		{name: "only audit written, attached to Config.DB's connection", db: pdb, writesConfig: false, attached: true, handle: func(r *http.Request) error {
			return viaAttach(r, pdb, auditPath, "INSERT INTO x.audit VALUES ('only audit')")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := primary.Pos()
			require.NoError(t, err)
			b := newBridge(t, Config{DB: tc.db, InstanceID: primary.Hostname()})
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := tc.handle(r); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
				}
			}))
			w := serve(h, withCookie(http.MethodPost, "/posts", ""))
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			after, err := primary.Pos()
			require.NoError(t, err)
			require.Equal(t, tc.writesConfig, after.TXID > before.TXID, "Config.DB written: TXID %d -> %d", before.TXID, after.TXID)
			cookie := txidCookie(w.Result())
			if !tc.writesConfig && tc.attached {
				// The driver does not tell which database a commit on a
				// connection with others attached wrote: a cookie is
				// allowed, naming a transaction Config.DB has.
				if cookie != nil {
					got, err := litefs.ParseTXID(cookie.Value)
					require.NoError(t, err)
					assert.LessOrEqual(t, got, litefs.TXID(after.TXID), "the cookie names a transaction still to come")
				}
				return
			}
			if !tc.writesConfig {
				assert.Nil(t, cookie, "a cookie for a request that did not write Config.DB")
				return
			}
			if !assert.NotNil(t, cookie, "no cookie for a request that wrote Config.DB (TXID %d)", after.TXID) {
				return
			}
			got, err := litefs.ParseTXID(cookie.Value)
			require.NoError(t, err)
			assert.GreaterOrEqual(t, got, litefs.TXID(after.TXID), "the cookie names TXID %v; the request's write to Config.DB is TXID %d", got, after.TXID)
		})
	}
}

// TestCookieForTxBegunWithoutContext: sqlx's MustBegin and database/sql's
// Begin begin a transaction with context.Background(); a handler that then
// runs its statements with r.Context() wrote for the request's Tracker, and
// the commit must be reported to it, or the client's next read on a
// replica may miss its write.
func TestCookieForTxBegunWithoutContext(t *testing.T) {
	cluster := litefstest.StartCluster(t, 1)
	primary := cluster.Primary()
	pdb := openFollowing(t, primary)
	_, err := pdb.Exec("CREATE TABLE posts(v TEXT)")
	require.NoError(t, err)
	b := newBridge(t, Config{DB: pdb, InstanceID: primary.Hostname()})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tx, err := pdb.Begin()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(r.Context(), "INSERT INTO posts VALUES ('in tx')"); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if err := tx.Commit(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}))
	before, err := primary.Pos()
	require.NoError(t, err)
	w := serve(h, withCookie(http.MethodPost, "/posts", ""))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	after, err := primary.Pos()
	require.NoError(t, err)
	require.Greater(t, after.TXID, before.TXID, "the transaction committed")
	cookie := txidCookie(w.Result())
	require.NotNil(t, cookie, "no cookie for a request whose statements wrote Config.DB (TXID %d) with its context", after.TXID)
	got, err := litefs.ParseTXID(cookie.Value)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, got, litefs.TXID(after.TXID))
}
