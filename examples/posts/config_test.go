package main

import (
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/litefs-sql/litefs"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Skipf("no user cache directory for the default database: %v", err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    config
		wantErr string
	}{
		{"defaults", nil, config{
			Addr: ":8080", DatabasePath: filepath.Join(cache, "litefs-sql", "posts", "posts.db"),
			InstanceID: host, SchemaWait: defaultSchemaWait, LogLevel: slog.LevelInfo,
		}, ""},
		{"Fly.io", map[string]string{
			"PORT": "8081", "DATABASE_PATH": "/litefs/posts.db", "FLY_MACHINE_ID": "148e21ea7e5089",
			"FLY_REGION": "ams", "SCHEMA_WAIT": "30s", "LOG_LEVEL": "debug",
		}, config{
			Addr: ":8081", DatabasePath: "/litefs/posts.db", InstanceID: "148e21ea7e5089",
			Region: "ams", SchemaWait: 30 * time.Second, LogLevel: slog.LevelDebug,
		}, ""},
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
		{"every error at once", map[string]string{"PORT": "x", "LOG_LEVEL": "y"}, config{}, `PORT="x": want a port number` + "\n" + `LOG_LEVEL="y"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadConfig(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Zero fields of want are not checked, but for the defaults case.
			check := func(field string, got, want any, zero bool) {
				if !zero && got != want {
					t.Errorf("%s = %v, want %v", field, got, want)
				}
			}
			all := tc.name == "defaults"
			check("Addr", got.Addr, tc.want.Addr, tc.want.Addr == "" && !all)
			check("DatabasePath", got.DatabasePath, tc.want.DatabasePath, tc.want.DatabasePath == "" && !all)
			check("InstanceID", got.InstanceID, tc.want.InstanceID, tc.want.InstanceID == "" && !all)
			check("Region", got.Region, tc.want.Region, tc.want.Region == "" && !all)
			check("SchemaWait", got.SchemaWait, tc.want.SchemaWait, tc.want.SchemaWait == 0 && !all)
			check("LogLevel", got.LogLevel, tc.want.LogLevel, tc.want.LogLevel == 0 && !all)
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
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(t.Context(), `CREATE TABLE t (x)`); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("database not at its path: %v", err)
			}
			var mode string
			if err := db.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
				t.Errorf("journal_mode %q (%v), want wal", mode, err)
			}
		})
	}
}
