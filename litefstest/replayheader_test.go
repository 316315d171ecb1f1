package litefstest_test

import (
	"strings"
	"testing"
	"time"

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
		{"instance=00bb33ff", H{Instance: "00bb33ff"}, ""},
		{"instance=node-0\n", H{}, "control byte"},
		{"region=sjc", H{Region: "sjc"}, ""},
		{`region="iad,ord,any"`, H{Region: "iad,ord,any"}, ""},
		{"prefer_instance=abc;elsewhere=true", H{PreferInstance: "abc", Elsewhere: true}, ""},
		{"app=worker;timeout=5s;fallback=force_self", H{App: "worker", Timeout: 5 * time.Second, Fallback: "force_self"}, ""},
		{"instance=a;fallback=prefer_self;timeout=800ms", H{Instance: "a", Fallback: "prefer_self", Timeout: 800 * time.Millisecond}, ""},
		{" instance = a ; state = hops:1 ", H{Instance: "a", State: "hops:1"}, ""},
		{"INSTANCE=a;State=x", H{Instance: "a", State: "x"}, ""},
		{`instance=a;state="a;b \"c\" \\ d"`, H{Instance: "a", State: `a;b "c" \ d`}, ""},
		{`instance=a;state=""`, H{Instance: "a"}, ""},
		{"instance=a;;", H{Instance: "a"}, ""},
		{";instance=a", H{Instance: "a"}, ""},
		{"instance=a;future_field=1", H{Instance: "a"}, ""},
		{"elsewhere=true", H{Elsewhere: true}, ""},
		{"", H{}, "no fields"},
		{" ; ", H{}, "no fields"},
		{"instance", H{}, "want key=value"},
		{"instance=a;region", H{}, "want key=value"},
		{"=a", H{}, "want a field name"},
		{"inst ance=a", H{}, "want key=value"},
		{"instance=a;instance=b", H{}, "given twice"},
		{"instance=a;INSTANCE=b", H{}, "given twice"},
		{`instance="a`, H{}, "unterminated"},
		{`instance="a\`, H{}, "unterminated"},
		{`instance="a" b`, H{}, "after the closing quote"},
		{"instance=a\x00", H{}, "control byte"},
		{"instance=\"a\x7f\"", H{}, "control byte"},
		{"elsewhere=maybe", H{}, "want true or false"},
		{"instance=a;timeout=5", H{}, "positive duration"},
		{"instance=a;timeout=-1s", H{}, "positive duration"},
		{"instance=a;timeout=0s", H{}, "positive duration"},
		{"instance=a;fallback=self", H{}, "want force_self or prefer_self"},
		{"state=x", H{}, "no target"},
		{"elsewhere=false", H{}, "no target"},
		{"instance=;state=x", H{}, "no target"},
		{strings.Repeat("x", 70<<10), H{}, "longer than"},
	} {
		got, err := litefstest.ParseReplayHeader(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "litefstest: invalid fly-replay header") {
				t.Errorf("ParseReplayHeader(%.40q): got %+v, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseReplayHeader(%q): got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestReplayHeaderString(t *testing.T) {
	t.Parallel()
	type H = litefstest.ReplayHeader
	for _, tc := range []struct {
		h    H
		want string
	}{
		{H{Instance: "node-0"}, "instance=node-0"},
		{H{Region: "iad,ord"}, `region="iad,ord"`},
		{H{Instance: "a", State: `x;"y"`}, `instance=a;state="x;\"y\""`},
		{H{PreferInstance: "p", Elsewhere: true, Timeout: 2 * time.Second, Fallback: "force_self"}, "prefer_instance=p;elsewhere=true;timeout=2s;fallback=force_self"},
		{H{App: "w", Region: "sjc"}, "region=sjc;app=w"},
	} {
		if got := tc.h.String(); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.h, got, tc.want)
		}
		if back, err := litefstest.ParseReplayHeader(tc.want); err != nil || back != tc.h {
			t.Errorf("ParseReplayHeader(%q): got %+v, %v; want %+v", tc.want, back, err, tc.h)
		}
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
		{"instance=node-1;region=local;t=1700000000123456;state=hop1",
			S{Instance: "node-1", Region: "local", Time: time.UnixMicro(1700000000123456), State: "hop1"}, ""},
		{"instance=a", S{Instance: "a"}, ""},
		{`instance=a;state="x;y"`, S{Instance: "a", State: "x;y"}, ""},
		{"instance=a;t=0", S{Instance: "a", Time: time.UnixMicro(0)}, ""},
		{"region=sjc", S{}, "no instance"},
		{"instance=a;t=soon", S{}, "microseconds"},
		{"instance=a;t=-5", S{}, "microseconds"},
		{"instance=a;t=99999999999999999999", S{}, "microseconds"},
		{"instance=a;instance=b", S{}, "given twice"},
		{"", S{}, "no fields"},
	} {
		got, err := litefstest.ParseReplaySrc(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "litefstest: invalid Fly-Replay-Src header") {
				t.Errorf("ParseReplaySrc(%q): got %+v, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !sameSrc(got, tc.want) {
			t.Errorf("ParseReplaySrc(%q): got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if back, err := litefstest.ParseReplaySrc(got.String()); err != nil || !sameSrc(back, got) {
			t.Errorf("round trip of %q through %q: got %+v, %v", tc.in, got.String(), back, err)
		}
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
			if h != (litefstest.ReplayHeader{}) || !strings.HasPrefix(err.Error(), "litefstest: invalid fly-replay header ") {
				t.Fatalf("ParseReplayHeader(%q): got %+v, %v", s, h, err)
			}
			return
		}
		again, err := litefstest.ParseReplayHeader(h.String())
		if err != nil || again != h {
			t.Fatalf("ParseReplayHeader(%q) = %+v; its String %q parses to %+v, %v", s, h, h.String(), again, err)
		}
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
			if !sameSrc(src, litefstest.ReplaySrc{}) || !strings.HasPrefix(err.Error(), "litefstest: invalid Fly-Replay-Src header ") {
				t.Fatalf("ParseReplaySrc(%q): got %+v, %v", s, src, err)
			}
			return
		}
		again, err := litefstest.ParseReplaySrc(src.String())
		if err != nil || !sameSrc(again, src) {
			t.Fatalf("ParseReplaySrc(%q) = %+v; its String %q parses to %+v, %v", s, src, src.String(), again, err)
		}
	})
}
