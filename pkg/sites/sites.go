// Package sites knows the Tableau sites the bridge works on and keeps one
// Tableau client for each.
//
// The default site is TABLEAU_SITE on TABLEAU_SERVER_URL: the refresh map's
// entries without a "site", and the secret's top-level credentials, are
// its. Any other site a map entry (or the lineage index, or the webhooks
// CLI's -site) names is on the same server unless TABLEAU_SITES says
// otherwise: a JSON object by content URL, each entry optionally giving the
// server (a Tableau Server beside a Tableau Cloud pod) and its REST API
// version:
//
//	TABLEAU_SITES={"emea": {}, "cloud": {"server_url": "https://prod-useast-a.online.tableau.com", "api_version": "3.24"}}
//
// A site is named by its content URL alone, compared without regard to
// case as Tableau does, so one content URL names one site in a deployment.
// Each site's credentials are its own (package secrets: tableau_sites), and
// each site has one client, so one shared session per (server, site,
// credentials): the session store's key names all three.
package sites

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// Site is one Tableau site: where it is served and how it is asked.
type Site struct {
	// ContentURL is the site's content URL as Tableau knows it: the
	// default site's is TABLEAU_SITE (which may be "").
	ContentURL string
	ServerURL  string
	// APIVersion is the REST API version to use; "" asks the server.
	APIVersion string
	// Default is set for TABLEAU_SITE on TABLEAU_SERVER_URL.
	Default bool
	// Listed is set for a site TABLEAU_SITES lists.
	Listed bool
}

// Key is how targets, records and the lineage index name the site: "" for
// the default site, else its content URL.
func (s Site) Key() string {
	if s.Default {
		return ""
	}
	return s.ContentURL
}

// String names the site for people: `the default site`, `site "emea"`,
// with the server when it is another.
func (s Site) String() string {
	if s.Default {
		if s.ContentURL == "" {
			return "the default site"
		}
		return fmt.Sprintf("site %q (the default)", s.ContentURL)
	}
	return fmt.Sprintf("site %q", s.ContentURL)
}

// Catalog is the sites the configuration knows: the default, and those
// TABLEAU_SITES lists. Any other content URL is a site on the default's
// server.
type Catalog struct {
	def    Site
	listed []Site // sorted by content URL
}

// entryKeys are what a TABLEAU_SITES entry may hold besides credentials.
var entryKeys = []string{"server_url", "api_version"}

// Parse reads TABLEAU_SITES (raw; "" lists no site) beside the default
// site def. credentialsAllowed says whether entries may carry the site's
// credentials under the secret's key names: only in local runs without
// SECRET_ID, where the environment holds every credential (package
// secrets reads them); with a secret they belong there, not in a variable
// the template shows. Every problem is reported, each naming its entry.
func Parse(raw string, def Site, credentialsAllowed bool) (*Catalog, error) {
	def.Default, def.Listed = true, false
	c := &Catalog{def: def}
	if strings.TrimSpace(raw) == "" {
		return c, nil
	}
	var entries map[string]map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.UseNumber()
	if err := dec.Decode(&entries); err != nil || dec.More() {
		// The decoder's error may quote a credential: do not wrap it.
		return nil, errors.New(`TABLEAU_SITES: want a JSON object by site content URL, e.g. {"emea": {}, "cloud": {"server_url": "https://prod-useast-a.online.tableau.com"}}`)
	}
	var errs []error
	seen := map[string]string{}
	for _, contentURL := range sortedKeys(entries) {
		where := fmt.Sprintf("TABLEAU_SITES[%q]", contentURL)
		if err := refreshmap.CheckSite(contentURL); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		if contentURL == "" || refreshmap.SameSite(contentURL, def.ContentURL) {
			errs = append(errs, fmt.Errorf(`%s: that is the default site (TABLEAU_SITE %q): set it with TABLEAU_SERVER_URL and TABLEAU_API_VERSION`, where, def.ContentURL))
			continue
		}
		if other, dup := seen[strings.ToLower(contentURL)]; dup {
			errs = append(errs, fmt.Errorf("%s: the same site as %q (content URLs are read without regard to case)", where, other))
			continue
		}
		seen[strings.ToLower(contentURL)] = contentURL
		s := Site{ContentURL: contentURL, ServerURL: def.ServerURL, APIVersion: def.APIVersion, Listed: true}
		text := map[string]string{}
		for k, v := range entries[contentURL] {
			switch {
			case slices.Contains(secrets.SiteKeys, k):
				if !credentialsAllowed {
					errs = append(errs, fmt.Errorf("%s: %s is a credential: put it in the secret, under tableau_sites[%q], not in a variable the template shows", where, k, contentURL))
				}
				continue
			case !slices.Contains(entryKeys, k):
				errs = append(errs, fmt.Errorf("%s: unknown key %q (want server_url, api_version)", where, k))
				continue
			}
			var str string
			if err := json.Unmarshal(v, &str); err != nil {
				errs = append(errs, fmt.Errorf("%s: %s must be a string", where, k))
				continue
			}
			text[k] = strings.TrimSpace(str)
		}
		if u, ok := text["server_url"]; ok && u != "" {
			s.ServerURL = u
			// Another server: its version is its own, asked of it unless
			// given.
			s.APIVersion = ""
			// Checked now, as TABLEAU_SERVER_URL is: a URL the client
			// refuses would otherwise fail every refresh on the site.
			if _, err := tableau.NewClient(u); err != nil {
				errs = append(errs, fmt.Errorf("%s: server_url: %s", where, strings.TrimPrefix(err.Error(), "tableau: ")))
			}
		}
		if v, ok := text["api_version"]; ok && v != "" {
			s.APIVersion = v
			if _, err := tableau.NewClient("https://example.com", tableau.WithAPIVersion(v)); err != nil {
				errs = append(errs, fmt.Errorf("%s: api_version: %s", where, strings.TrimPrefix(err.Error(), "tableau: ")))
			}
		}
		c.listed = append(c.listed, s)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Default is the default site.
func (c *Catalog) Default() Site { return c.def }

// Listed returns the sites TABLEAU_SITES lists, by content URL.
func (c *Catalog) Listed() []Site { return slices.Clone(c.listed) }

// Site returns the site with the given content URL: the default for "" or
// TABLEAU_SITE, the listed one, or else a site on the default's server.
func (c *Catalog) Site(contentURL string) Site {
	if contentURL == "" || refreshmap.SameSite(contentURL, c.def.ContentURL) {
		return c.def
	}
	for _, s := range c.listed {
		if refreshmap.SameSite(s.ContentURL, contentURL) {
			return s
		}
	}
	return Site{ContentURL: contentURL, ServerURL: c.def.ServerURL, APIVersion: c.def.APIVersion}
}

// Clients holds one Tableau client per site, each made on first use (a
// site no target names costs nothing), so that every part of a process
// that works on a site shares its one session.
type Clients struct {
	cat  *Catalog
	make func(Site) (*tableau.Client, error)
	def  *tableau.Client

	mu sync.Mutex
	m  map[string]*tableau.Client // by lower-case content URL; the default under ""
}

// NewClients returns the clients of the catalog's sites, made by make; the
// default site's is made now, so that a configuration it refuses is
// found at start.
func NewClients(cat *Catalog, make func(Site) (*tableau.Client, error)) (*Clients, error) {
	def, err := make(cat.Default())
	if err != nil {
		return nil, err
	}
	return &Clients{cat: cat, make: make, def: def, m: map[string]*tableau.Client{"": def}}, nil
}

// Catalog returns the sites the clients are made for.
func (c *Clients) Catalog() *Catalog { return c.cat }

// Default returns the default site's client.
func (c *Clients) Default() *tableau.Client { return c.def }

// Client returns the client of the site with the given content URL ("" or
// TABLEAU_SITE for the default), made on first use.
func (c *Clients) Client(contentURL string) (*tableau.Client, error) {
	site := c.cat.Site(contentURL)
	if site.Default {
		return c.def, nil
	}
	k := strings.ToLower(site.ContentURL)
	c.mu.Lock()
	defer c.mu.Unlock()
	if tc, ok := c.m[k]; ok {
		return tc, nil
	}
	tc, err := c.make(site)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", site, err)
	}
	c.m[k] = tc
	return tc, nil
}

// BySiteID returns the client whose session is on the site with the given
// LUID (as Tableau's webhooks name a site), and the site's key ("" for the
// default); nil when no client made so far has signed in to it.
func (c *Clients) BySiteID(luid string) (*tableau.Client, string) {
	if luid == "" {
		return nil, ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, tc := range c.m {
		if tc.SiteID() == luid {
			if k != "" {
				k = tc.Site()
			}
			return tc, k
		}
	}
	return nil, ""
}
