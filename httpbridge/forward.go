package httpbridge

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/litefs-sql/litefs"
)

// DefaultMaxForwardBody is the default ForwardConfig.MaxBody.
const DefaultMaxForwardBody = 16 << 20

// ForwardConfig configures a [Forwarder].
type ForwardConfig struct {
	// URL is the base URL of the primary's HTTP server, with "{primary}"
	// standing for the primary's ID and "{app}" for App, for example
	// "http://{primary}.vm.{app}.internal:8080". The request's path and
	// query are appended.
	URL string
	// App replaces "{app}" in URL. Default: $FLY_APP_NAME.
	App string
	// MaxBody bounds the copy of the request body kept while the handler
	// reads it, so the body can be re-sent; the part the handler did not
	// read is streamed and not counted. Default: DefaultMaxForwardBody.
	MaxBody int64
	// Transport sends the forwarded request. Default: http.DefaultTransport.
	Transport http.RoundTripper
	// Logger reports failures to reach the primary. Default: slog.Default().
	Logger *slog.Logger
}

// A Forwarder sends refused requests to the primary itself, through
// httputil.ReverseProxy, for deployments without Fly's proxy or for bodies
// too large for fly-replay. It is a [Replayer]; use it as Config.Replay to
// forward every refused request, or as Config.Forward for large bodies only.
//
// While a Forwarder is configured, the bridge keeps a copy of each request
// body the handler reads, up to MaxBody bytes: forwarding costs memory on
// every request with a body, refused or not.
//
// A forwarded request carries Fly-Replay-Src with this node's ID and the hop
// count, as a request replayed by Fly would, so the bridge on the receiving
// node applies the same loop rules. A primary that cannot be reached gets a
// 502 Bad Gateway.
type Forwarder struct {
	prefix, suffix string // URL around "{primary}", with {app} replaced
	maxBody        int64
	transport      http.RoundTripper
	log            *slog.Logger
}

// NewForwarder validates c and returns a Forwarder.
func NewForwarder(c ForwardConfig) (*Forwarder, error) {
	if c.App == "" {
		c.App = os.Getenv("FLY_APP_NAME")
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxForwardBody
	}
	if c.Transport == nil {
		c.Transport = http.DefaultTransport
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxBody < 0 {
		return nil, fmt.Errorf("httpbridge: ForwardConfig.MaxBody is negative (%d)", c.MaxBody)
	}
	tmpl := c.URL
	if strings.Contains(tmpl, "{app}") {
		if !litefs.ValidPrimaryID(c.App) {
			return nil, fmt.Errorf("httpbridge: ForwardConfig.URL %q uses {app}, but App (or $FLY_APP_NAME) is %q, not a valid name", c.URL, c.App)
		}
		tmpl = strings.ReplaceAll(tmpl, "{app}", c.App)
	}
	prefix, suffix, ok := strings.Cut(tmpl, "{primary}")
	if !ok || strings.Contains(suffix, "{primary}") {
		return nil, fmt.Errorf("httpbridge: ForwardConfig.URL %q must contain {primary} once", c.URL)
	}
	f := &Forwarder{prefix: prefix, suffix: suffix, maxBody: c.MaxBody, transport: c.Transport, log: c.Logger}
	u, err := f.target("node-1")
	if err != nil {
		return nil, fmt.Errorf("httpbridge: ForwardConfig.URL %q: %w", c.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || !strings.Contains(u.Host, "node-1") {
		return nil, fmt.Errorf("httpbridge: ForwardConfig.URL %q must be an http or https URL with {primary} in its host", c.URL)
	}
	return f, nil
}

func (f *Forwarder) target(primary string) (*url.URL, error) {
	return url.Parse(f.prefix + primary + f.suffix)
}

// Replay forwards r to d.Primary and copies the primary's response to w.
func (f *Forwarder) Replay(w http.ResponseWriter, r *http.Request, d Decision) {
	target, err := f.target(d.Primary)
	if err != nil || !litefs.ValidPrimaryID(d.Primary) {
		f.fail(w, d, errors.Join(errors.New("invalid primary ID"), err))
		return
	}
	src := "instance=" + d.Self + ";state=" + hopsPrefix + strconv.Itoa(d.Hops+1)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // the app may route or build links on Host
			// Pass on what the edge proxy said of the client (as the bridge
			// itself trusts X-Forwarded-Proto): the hop to the primary is
			// between two machines, not from the client.
			pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			pr.SetXForwarded()
			for _, h := range []string{"X-Forwarded-Proto", "X-Forwarded-Host"} {
				if v := pr.In.Header.Get(h); v != "" {
					pr.Out.Header.Set(h, v)
				}
			}
			pr.Out.Header.Set(HeaderReplaySrc, src)
		},
		Transport: f.transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			f.fail(w, d, err)
		},
	}
	rp.ServeHTTP(w, r)
}

func (f *Forwarder) fail(w http.ResponseWriter, d Decision, err error) {
	f.log.Error("litefs: forwarding a write to the primary failed", "primary", d.Primary, "error", err)
	http.Error(w, "litefs: the primary ("+d.Primary+") could not be reached", http.StatusBadGateway)
}
