package main

import (
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/litefs-sql/litefs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	host, err := os.Hostname()
	require.NoError(t, err)
	wd, err := os.Getwd()
	require.NoError(t, err)
	tests := []struct {
		name    string
		env     map[string]string
		want    config
		wantErr string
	}{
		{"defaults", nil, config{
			Addr: "127.0.0.1:8080", AllowedHosts: []string{"localhost", "127.0.0.1", "::1"},
			DatabasePath: filepath.Join(wd, "data", "posts.db"),
			InstanceID:   host, SchemaWait: defaultSchemaWait, LogLevel: slog.LevelInfo,
			CheckinEvery: defaultCheckinEvery,
		}, ""},
		{"Fly.io", map[string]string{
			"LISTEN_ADDR": ":8080", "ALLOWED_HOSTS": "*", "DATABASE_PATH": "/litefs/posts.db", "FLY_MACHINE_ID": "148e21ea7e5089",
			"FLY_REGION": "ams", "SCHEMA_WAIT": "30s", "LOG_LEVEL": "debug", "CHECKIN_EVERY": "5m",
			"LITEFS_HTTP_ADDR": ":20202",
		}, config{
			Addr: ":8080", DatabasePath: "/litefs/posts.db", InstanceID: "148e21ea7e5089",
			Region: "ams", SchemaWait: 30 * time.Second, LogLevel: slog.LevelDebug,
			CheckinEvery: 5 * time.Minute, LiteFSAPI: ":20202",
		}, ""},
		{"no check-ins", map[string]string{"CHECKIN_EVERY": "0"}, config{}, ""},
		{"port alone stays on loopback", map[string]string{"PORT": "8081"}, config{Addr: "127.0.0.1:8081"}, ""},
		{"listen address wins over port", map[string]string{"LISTEN_ADDR": "127.0.0.1:9000", "PORT": "1"}, config{
			Addr: "127.0.0.1:9000",
		}, ""},
		{"relative database path", map[string]string{"DATABASE_PATH": "data/x.db"}, config{
			DatabasePath: filepath.Join(wd, "data", "x.db"),
		}, ""},
		{"bad port", map[string]string{"PORT": "http"}, config{}, `PORT="http"`},
		{"port out of range", map[string]string{"PORT": "70000"}, config{}, `PORT="70000"`},
		{"bad listen address", map[string]string{"LISTEN_ADDR": "8080"}, config{}, `LISTEN_ADDR="8080"`},
		{"bad schema wait", map[string]string{"SCHEMA_WAIT": "soon"}, config{}, `SCHEMA_WAIT="soon"`},
		{"negative schema wait", map[string]string{"SCHEMA_WAIT": "-1s"}, config{}, `SCHEMA_WAIT="-1s"`},
		{"bad log level", map[string]string{"LOG_LEVEL": "loud"}, config{}, `LOG_LEVEL="loud"`},
		{"bad check-in interval", map[string]string{"CHECKIN_EVERY": "often"}, config{}, `CHECKIN_EVERY="often"`},
		{"negative check-in interval", map[string]string{"CHECKIN_EVERY": "-1m"}, config{}, `CHECKIN_EVERY="-1m"`},
		{"no allowed host", map[string]string{"ALLOWED_HOSTS": " , "}, config{}, `ALLOWED_HOSTS=" , ": want host names, or *`},
		{"every error at once", map[string]string{"PORT": "x", "LOG_LEVEL": "y"}, config{}, `PORT="x": want a port number` + "\n" + `LOG_LEVEL="y"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadConfig(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			// Zero fields of want are not checked, but for the defaults
			// and Fly.io cases.
			all := tc.name == "defaults" || tc.name == "Fly.io"
			check := func(field string, got, want any, zero bool) {
				if !zero || all {
					assert.Equal(t, want, got, field)
				}
			}
			check("Addr", got.Addr, tc.want.Addr, tc.want.Addr == "")
			check("AllowedHosts", got.AllowedHosts, tc.want.AllowedHosts, tc.want.AllowedHosts == nil)
			check("DatabasePath", got.DatabasePath, tc.want.DatabasePath, tc.want.DatabasePath == "")
			check("InstanceID", got.InstanceID, tc.want.InstanceID, tc.want.InstanceID == "")
			check("Region", got.Region, tc.want.Region, tc.want.Region == "")
			check("SchemaWait", got.SchemaWait, tc.want.SchemaWait, tc.want.SchemaWait == 0)
			check("LogLevel", got.LogLevel, tc.want.LogLevel, tc.want.LogLevel == 0)
			check("CheckinEvery", got.CheckinEvery, tc.want.CheckinEvery, tc.want.CheckinEvery == 0 && tc.name != "no check-ins")
			check("LiteFSAPI", got.LiteFSAPI, tc.want.LiteFSAPI, tc.want.LiteFSAPI == "")
			if tc.want.LiteFSAPI != "" {
				assert.Contains(t, got.DSN(), "&_litefs_api=%3A20202", "DSN")
			}
		})
	}
}

func TestAllowedHosts(t *testing.T) {
	t.Parallel()
	loopback := []string{"localhost", "127.0.0.1", "::1"}
	tests := []struct {
		name, value, addr string
		want              []string
	}{
		{"default on loopback", "", "127.0.0.1:8080", loopback},
		{"default on all interfaces", "", ":8080", loopback},
		{"default on 0.0.0.0", "", "0.0.0.0:8080", loopback},
		{"default on [::]", "", "[::]:8080", loopback},
		{"default on a named address", "", "Box.lan:8080", append(loopback, "box.lan")},
		{"default on an IPv6 address", "", "[fd00::1]:8080", append(loopback, "fd00::1")},
		{"any", "*", "127.0.0.1:8080", nil},
		{"any among names", "a.example, *", "127.0.0.1:8080", nil},
		{"no names", " , ", "127.0.0.1:8080", []string{}},
		{"a list replaces the default", " posts.example , WWW.Posts.Example., [::1]:99 ,", ":8080",
			[]string{"posts.example", "www.posts.example", "::1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, allowedHosts(tc.value, tc.addr))
		})
	}
}

// TestDSN opens databases whose paths hold characters that mean something
// in a URI, and checks that the file is created at the very path.
func TestDSN(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"plain.db", "with space.db", "q?mark.db", "hash#.db", "100%.db", "a&b=c;d.db"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name)
			db, err := sql.Open(litefs.DriverName, config{DatabasePath: path}.DSN())
			require.NoError(t, err)
			defer db.Close()
			_, err = db.ExecContext(t.Context(), `CREATE TABLE t (x)`)
			require.NoError(t, err)
			_, err = os.Stat(path)
			assert.NoError(t, err, "database not at its path")
			var mode string
			assert.NoError(t, db.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode))
			assert.Equal(t, "wal", mode, "journal_mode")
		})
	}
}

// FuzzNormalHost: any Host header value is read without a panic, in lower
// case, and matches a loopback name only if it names it.
func FuzzNormalHost(f *testing.F) {
	for _, seed := range []string{"", "localhost", "LOCALHOST:8080", "[::1]:8080", "::1", "127.0.0.1.", "evil.example:80", "[", "]:", "a:b:c"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, h string) {
		got := normalHost(h)
		assert.Equal(t, strings.ToLower(got), got, "normalHost(%q)", h)
		if slices.Contains(loopbackHosts, got) {
			assert.Contains(t, strings.ToLower(h), got, "normalHost(%q) names a loopback host it does not hold", h)
		}
	})
}
