package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/httpbridge"
)

func TestLoadForwarding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    forwarding
		wantErr string
		forward bool // replayer is a Forwarder
	}{
		{name: "unset: fly-replay", env: nil},
		{name: "template", env: map[string]string{"FORWARD_URL": "http://{primary}:8080"},
			want: forwarding{URL: "http://{primary}:8080"}, forward: true},
		{name: "map and trusted proxies", env: map[string]string{
			"FORWARD_PRIMARIES":       " node-0=http://10.0.0.5:8080 , node-1=http://10.0.0.6:8080,",
			"FORWARD_TRUSTED_PROXIES": "10.0.0.0/8, fd00::/8",
		}, want: forwarding{
			Primaries:      map[string]string{"node-0": "http://10.0.0.5:8080", "node-1": "http://10.0.0.6:8080"},
			TrustedProxies: []string{"10.0.0.0/8", "fd00::/8"},
		}, forward: true},
		{name: "both", env: map[string]string{"FORWARD_URL": "http://{primary}", "FORWARD_PRIMARIES": "a=http://a"},
			wantErr: "both set"},
		{name: "bad map", env: map[string]string{"FORWARD_PRIMARIES": "node-0"}, wantErr: "FORWARD_PRIMARIES"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := loadForwarding(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			r, err := got.replayer(nil)
			require.NoError(t, err)
			_, isForwarder := r.(*httpbridge.Forwarder)
			assert.Equal(t, tc.forward, isForwarder)
			assert.Equal(t, tc.forward, r != nil, "no Forwarder must be a nil Replayer, not a nil *Forwarder")
		})
	}
}

func TestForwardingReplayerErrors(t *testing.T) {
	t.Parallel()
	for _, f := range []forwarding{
		{URL: "http://primary"},
		{URL: "http://{primary}", TrustedProxies: []string{"not a network"}},
		{Primaries: map[string]string{"node-0": "not a url"}},
	} {
		_, err := f.replayer(nil)
		assert.Error(t, err, "%+v", f)
	}
}

func FuzzParsePrimaries(f *testing.F) {
	for _, s := range []string{"node-0=http://a:1", "a=b,c=d", "=", ",", "a==b", "a=b,a=c", "node 0=http://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parsePrimaries(s)
		if err != nil {
			assert.Nil(t, m)
			return
		}
		assert.NotEmpty(t, m)
		for id, u := range m {
			assert.NotEmpty(t, u)
			assert.NotContains(t, id, ",")
			assert.Equal(t, strings.TrimSpace(id), id)
		}
	})
}
