package litefstest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

func TestParseReplayHeader(t *testing.T) {
	t.Parallel()
	type H = litefstest.ReplayHeader
	for _, tc := range []struct {
		in      string
		want    H
		wantErr string
	}{
		{in: "instance=00bb33ff", want: H{Instance: "00bb33ff"}},
		{in: "instance=node-0\n", wantErr: "control byte"},
		{in: "region=sjc", want: H{Region: "sjc"}},
		{in: `region="iad,ord,any"`, want: H{Region: "iad,ord,any"}},
		{in: "prefer_instance=abc;elsewhere=true", want: H{PreferInstance: "abc", Elsewhere: true}},
		{in: "app=worker;timeout=5s;fallback=force_self", want: H{App: "worker", Timeout: 5 * time.Second, Fallback: "force_self"}},
		{in: "instance=a;fallback=prefer_self;timeout=800ms", want: H{Instance: "a", Fallback: "prefer_self", Timeout: 800 * time.Millisecond}},
		{in: " instance = a ; state = hops:1 ", want: H{Instance: "a", State: "hops:1"}},
		{in: "INSTANCE=a;State=x", want: H{Instance: "a", State: "x"}},
		{in: `instance=a;state="a;b \"c\" \\ d"`, want: H{Instance: "a", State: `a;b "c" \ d`}},
		{in: `instance=a;state=""`, want: H{Instance: "a"}},
		{in: "instance=a;;", want: H{Instance: "a"}},
		{in: ";instance=a", want: H{Instance: "a"}},
		{in: "instance=a;future_field=1", want: H{Instance: "a"}},
		{in: "elsewhere=true", want: H{Elsewhere: true}},
		{in: "", wantErr: "no fields"},
		{in: " ; ", wantErr: "no fields"},
		{in: "instance", wantErr: "want key=value"},
		{in: "instance=a;region", wantErr: "want key=value"},
		{in: "=a", wantErr: "want a field name"},
		{in: "inst ance=a", wantErr: "want key=value"},
		{in: "instance=a;instance=b", wantErr: "given twice"},
		{in: "instance=a;INSTANCE=b", wantErr: "given twice"},
		{in: `instance="a`, wantErr: "unterminated"},
		{in: `instance="a\`, wantErr: "unterminated"},
		{in: `instance="a" b`, wantErr: "after the closing quote"},
		{in: "instance=a\x00", wantErr: "control byte"},
		{in: "instance=\"a\x7f\"", wantErr: "control byte"},
		{in: "elsewhere=maybe", wantErr: "want true or false"},
		{in: "instance=a;timeout=5", wantErr: "positive duration"},
		{in: "instance=a;timeout=-1s", wantErr: "positive duration"},
		{in: "instance=a;timeout=0s", wantErr: "positive duration"},
		{in: "instance=a;fallback=self", wantErr: "want force_self or prefer_self"},
		{in: "state=x", wantErr: "no target"},
		{in: "elsewhere=false", wantErr: "no target"},
		{in: "instance=;state=x", wantErr: "no target"},
		{in: strings.Repeat("x", 70<<10), wantErr: "longer than"},
	} {
		got, err := litefstest.ParseReplayHeader(tc.in)
		if tc.wantErr != "" {
			if assert.ErrorContains(t, err, tc.wantErr, "ParseReplayHeader(%.40q)", tc.in) {
				assert.True(t, strings.HasPrefix(err.Error(), "litefstest: invalid fly-replay header"), "ParseReplayHeader(%.40q): error %q", tc.in, err)
			}
			continue
		}
		assert.NoError(t, err, "ParseReplayHeader(%q)", tc.in)
		assert.Equal(t, tc.want, got, "ParseReplayHeader(%q)", tc.in)
	}
}

func TestReplayHeaderString(t *testing.T) {
	t.Parallel()
	type H = litefstest.ReplayHeader
	for _, tc := range []struct {
		h    H
		want string
	}{
		{h: H{Instance: "node-0"}, want: "instance=node-0"},
		{h: H{Region: "iad,ord"}, want: `region="iad,ord"`},
		{h: H{Instance: "a", State: `x;"y"`}, want: `instance=a;state="x;\"y\""`},
		{h: H{PreferInstance: "p", Elsewhere: true, Timeout: 2 * time.Second, Fallback: "force_self"}, want: "prefer_instance=p;elsewhere=true;timeout=2s;fallback=force_self"},
		{h: H{App: "w", Region: "sjc"}, want: "region=sjc;app=w"},
	} {
		assert.Equal(t, tc.want, tc.h.String(), "%+v", tc.h)
		back, err := litefstest.ParseReplayHeader(tc.want)
		assert.NoError(t, err, "ParseReplayHeader(%q)", tc.want)
		assert.Equal(t, tc.h, back, "ParseReplayHeader(%q)", tc.want)
	}
}

func TestParseReplaySrc(t *testing.T) {
	t.Parallel()
	type S = litefstest.ReplaySrc
	for _, tc := range []struct {
		in      string
		want    S
		wantErr string
	}{
		{in: "instance=node-1;region=local;t=1700000000123456;state=hop1",
			want: S{Instance: "node-1", Region: "local", Time: time.UnixMicro(1700000000123456), State: "hop1"}},
		{in: "instance=a", want: S{Instance: "a"}},
		{in: `instance=a;state="x;y"`, want: S{Instance: "a", State: "x;y"}},
		{in: "instance=a;t=0", want: S{Instance: "a", Time: time.UnixMicro(0)}},
		{in: "region=sjc", wantErr: "no instance"},
		{in: "instance=a;t=soon", wantErr: "microseconds"},
		{in: "instance=a;t=-5", wantErr: "microseconds"},
		{in: "instance=a;t=99999999999999999999", wantErr: "microseconds"},
		{in: "instance=a;instance=b", wantErr: "given twice"},
		{in: "", wantErr: "no fields"},
	} {
		got, err := litefstest.ParseReplaySrc(tc.in)
		if tc.wantErr != "" {
			if assert.ErrorContains(t, err, tc.wantErr, "ParseReplaySrc(%q)", tc.in) {
				assert.True(t, strings.HasPrefix(err.Error(), "litefstest: invalid Fly-Replay-Src header"), "ParseReplaySrc(%q): error %q", tc.in, err)
			}
			continue
		}
		assert.NoError(t, err, "ParseReplaySrc(%q)", tc.in)
		assert.True(t, sameSrc(got, tc.want), "ParseReplaySrc(%q): got %+v, want %+v", tc.in, got, tc.want)
		back, err := litefstest.ParseReplaySrc(got.String())
		assert.NoError(t, err, "round trip of %q through %q", tc.in, got.String())
		assert.True(t, sameSrc(back, got), "round trip of %q through %q: got %+v", tc.in, got.String(), back)
	}
}

func sameSrc(a, b litefstest.ReplaySrc) bool {
	return a.Instance == b.Instance && a.Region == b.Region && a.State == b.State && a.Time.Equal(b.Time)
}

func FuzzParseReplayHeader(f *testing.F) {
	for _, s := range []string{
		"instance=00bb33ff", `region="iad,ord"`, "prefer_instance=a;elsewhere=true;state=x",
		"app=w;timeout=5s;fallback=force_self", `instance="a\"b";state=";"`, "", ";;", "instance", `state="`,
		"instance=a;timeout=1h2m3.5s", "elsewhere=1", "instance=\xff\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := litefstest.ParseReplayHeader(s)
		if err != nil {
			require.Zero(t, h, "ParseReplayHeader(%q) failed with %v", s, err)
			require.True(t, strings.HasPrefix(err.Error(), "litefstest: invalid fly-replay header "), "ParseReplayHeader(%q): error %q", s, err)
			return
		}
		again, err := litefstest.ParseReplayHeader(h.String())
		require.NoError(t, err, "ParseReplayHeader(%q) = %+v; its String %q does not parse", s, h, h.String())
		require.Equal(t, h, again, "ParseReplayHeader(%q): its String %q parses to another header", s, h.String())
	})
}

func FuzzParseReplaySrc(f *testing.F) {
	for _, s := range []string{
		"instance=node-1;region=local;t=1700000000123456;state=hop1", "instance=a", `instance=a;state="x;y"`,
		"t=1", "instance=a;t=-1", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		src, err := litefstest.ParseReplaySrc(s)
		if err != nil {
			require.True(t, sameSrc(src, litefstest.ReplaySrc{}), "ParseReplaySrc(%q) failed with %v and returned %+v", s, err, src)
			require.True(t, strings.HasPrefix(err.Error(), "litefstest: invalid Fly-Replay-Src header "), "ParseReplaySrc(%q): error %q", s, err)
			return
		}
		again, err := litefstest.ParseReplaySrc(src.String())
		require.NoError(t, err, "ParseReplaySrc(%q) = %+v; its String %q does not parse", s, src, src.String())
		require.True(t, sameSrc(again, src), "ParseReplaySrc(%q) = %+v; its String %q parses to %+v", s, src, src.String(), again)
	})
}
