package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/httpbridge"
)

// Off Fly.io no proxy follows fly-replay, so the app forwards a write
// refused on a replica to the primary itself, with an httpbridge.Forwarder.
// The deploy kits in deploy/compose and deploy/kubernetes set these
// variables; on Fly.io they stay unset.

// forwarding is how the app finds the primary's app, if it forwards.
type forwarding struct {
	// URL is $FORWARD_URL, a template such as "http://{primary}:8080".
	URL string
	// Primaries is $FORWARD_PRIMARIES, "node-0=http://10.0.0.5:8080,…",
	// for node names that do not resolve.
	Primaries map[string]string
	// TrustedProxies is $FORWARD_TRUSTED_PROXIES, comma-separated networks
	// of the load balancer, whose X-Forwarded-* headers are passed on.
	TrustedProxies []string
}

// loadForwarding reads the forwarding variables.
func loadForwarding(getenv func(string) string) (forwarding, error) {
	f := forwarding{URL: getenv("FORWARD_URL")}
	var errs []error
	if s := getenv("FORWARD_PRIMARIES"); s != "" {
		m, err := parsePrimaries(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("FORWARD_PRIMARIES: %w", err))
		}
		f.Primaries = m
	}
	if f.URL != "" && f.Primaries != nil {
		errs = append(errs, errors.New("FORWARD_URL and FORWARD_PRIMARIES are both set; set one"))
	}
	for _, s := range strings.Split(getenv("FORWARD_TRUSTED_PROXIES"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			f.TrustedProxies = append(f.TrustedProxies, s)
		}
	}
	return f, errors.Join(errs...)
}

// parsePrimaries parses "id=url,id=url": node names (as LiteFS names the
// primary) and the base URLs of their apps.
func parsePrimaries(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, u, ok := strings.Cut(entry, "=")
		id, u = strings.TrimSpace(id), strings.TrimSpace(u)
		if !ok || !litefs.ValidPrimaryID(id) || u == "" {
			return nil, fmt.Errorf("%q: want name=url", entry)
		}
		if _, dup := m[id]; dup {
			return nil, fmt.Errorf("%q is named twice", id)
		}
		m[id] = u
	}
	if len(m) == 0 {
		return nil, errors.New("no name=url entries")
	}
	return m, nil
}

// replayer returns the bridge's Config.Replay: nil, for fly-replay, unless
// forwarding is configured.
func (f forwarding) replayer(log *slog.Logger) (httpbridge.Replayer, error) {
	if f.URL == "" && f.Primaries == nil {
		return nil, nil
	}
	c := httpbridge.ForwardConfig{URL: f.URL, Primaries: f.Primaries, Logger: log}
	if len(f.TrustedProxies) > 0 {
		trust, err := httpbridge.TrustPeers(f.TrustedProxies...)
		if err != nil {
			return nil, fmt.Errorf("FORWARD_TRUSTED_PROXIES: %w", err)
		}
		c.TrustForwarded = trust
	}
	fwd, err := httpbridge.NewForwarder(c)
	if err != nil {
		return nil, err
	}
	return fwd, nil
}
