package tableautest

import (
	"bytes"
	"io"
	"net/http"
	"strings"
)

// A Tableau Server (or a Tableau Cloud pod) holds several sites, each with
// its own users, personal access tokens, connected apps, content, jobs,
// webhooks and limits: a PAT or a connected app signs in to the site it
// belongs to, and a session works on its site alone. AddSite adds one to a
// running simulator. Each site is a Server of its own, so that everything
// the simulator offers (faults, latency, the concurrency limit, recorded
// requests) is per site as on Tableau; the server it was added to routes
// each request to its site:
//
//   - sign-in by the site's content URL in the request's credentials;
//   - calls under sites/{site-luid}/ by the site's LUID;
//   - sign-out and the Metadata API by the session's token, which names
//     its site.
//
// Everything else (serverinfo, a sign-in to a content URL no site has)
// is answered by the server's own site.

// AddSite adds a site with the given content URL to the server and returns
// it, to be filled and inspected like any Server (AddPAT, AddWorkbook,
// Requests, ...). It answers on the server's URL. opts may set what a site
// has of its own (WithJobTimings, WithSessionTTL, WithConcurrencyLimit,
// DuplicateWebhookDeliveries, ...); the REST API version, the product
// version and the listening address are the server's. The site is closed
// with the server. AddSite panics if the content URL is taken, as
// NewServer panics on a bad option.
func (s *Server) AddSite(contentURL string, opts ...Option) *Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.parent != nil {
		panic("tableautest: AddSite on a site: add sites to the server")
	}
	for _, taken := range append([]string{s.site.contentURL}, s.siteURLsLocked()...) {
		if strings.EqualFold(taken, contentURL) {
			panic("tableautest: AddSite(" + contentURL + "): the server already has a site with that content URL")
		}
	}
	cfg := s.cfg
	cfg.contentURL = contentURL
	for _, o := range opts {
		o(&cfg)
	}
	cfg.contentURL = contentURL
	cfg.apiVersion, cfg.productVersion, cfg.build, cfg.listenAddr = s.cfg.apiVersion, s.cfg.productVersion, s.cfg.build, s.cfg.listenAddr
	if cfg.hookClient == nil {
		cfg.hookClient = s.hooks
	}
	site := newServer(s.ctx, cfg, s.version)
	site.parent = s
	s.sites = append(s.sites, site)
	return site
}

// Site returns the site with the given content URL (compared as Tableau
// does, without regard to case): the server itself for its own, or one
// added with AddSite; nil when the server has none.
func (s *Server) Site(contentURL string) *Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.EqualFold(s.site.contentURL, contentURL) {
		return s
	}
	for _, site := range s.sites {
		if strings.EqualFold(site.site.contentURL, contentURL) {
			return site
		}
	}
	return nil
}

// ContentURL is the site's content URL.
func (s *Server) ContentURL() string { return s.site.contentURL }

func (s *Server) siteURLsLocked() []string {
	out := make([]string, len(s.sites))
	for i, site := range s.sites {
		out[i] = site.site.contentURL
	}
	return out
}

// route serves a request that reached the server's listener: its own site
// serves it, or the added site it is for.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	sites := s.sites
	s.mu.Unlock()
	if len(sites) == 0 {
		s.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	r.Body = io.NopCloser(bytes.NewReader(body))
	if site := siteFor(r, body, sites); site != nil {
		site.ServeHTTP(w, r)
		return
	}
	s.ServeHTTP(w, r)
}

// siteFor picks the added site a request is for, or nil for the server's
// own: by the sign-in's content URL, the path's site LUID, or the token's
// site.
func siteFor(r *http.Request, body []byte, sites []*Server) *Server {
	byID := func(id string) *Server {
		for _, site := range sites {
			if site.site.id == id {
				return site
			}
		}
		return nil
	}
	rest, _ := strings.CutPrefix(r.URL.Path, "/api/")
	_, tail, _ := strings.Cut(rest, "/")
	segs := strings.Split(strings.Trim(tail, "/"), "/")
	switch {
	case len(segs) >= 2 && strings.EqualFold(segs[0], "sites"):
		return byID(segs[1])
	case len(segs) == 2 && strings.EqualFold(segs[0], "auth") && strings.EqualFold(segs[1], "signin"):
		req, err := decodeBody(body, r.Header.Get("Content-Type"))
		if err != nil {
			return nil
		}
		contentURL := str(obj(obj(req, "credentials"), "site"), "contentUrl")
		for _, site := range sites {
			if strings.EqualFold(site.site.contentURL, contentURL) {
				return site
			}
		}
		return nil
	}
	// Sign-out and the Metadata API carry only the token, which ends with
	// its site's LUID (newToken).
	tok := r.Header.Get("X-Tableau-Auth")
	if i := strings.LastIndexByte(tok, '|'); i >= 0 {
		return byID(tok[i+1:])
	}
	return nil
}
