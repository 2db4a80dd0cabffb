package secrets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// SiteCredentials sign in to one Tableau site: a personal access token, or
// a connected app (direct trust) and the user it acts as. The key names are
// the top-level ones':
//
//	"tableau_sites": {"emea": {"tableau_pat_name": "...", "tableau_pat_secret": "..."},
//	                  "apac": {"tableau_client_id": "...", "tableau_secret_id": "...",
//	                           "tableau_secret_value": "...", "tableau_username": "..."}}
//
// Its String method hides the values.
type SiteCredentials struct {
	PATName     string `json:"tableau_pat_name,omitempty"`
	PATSecret   string `json:"tableau_pat_secret,omitempty"`
	ClientID    string `json:"tableau_client_id,omitempty"`
	SecretID    string `json:"tableau_secret_id,omitempty"`
	SecretValue string `json:"tableau_secret_value,omitempty"`
	Username    string `json:"tableau_username,omitempty"`
}

// SiteKeys are the keys of a site's credentials, in the order a person
// fills them in.
var SiteKeys = []string{"tableau_pat_name", "tableau_pat_secret", "tableau_client_id", "tableau_secret_id", "tableau_secret_value", "tableau_username"}

// String implements fmt.Stringer without revealing any value.
func (s SiteCredentials) String() string {
	return fmt.Sprintf("SiteCredentials{pat=%q connectedApp=%t}", s.PATName, s.ConnectedApp())
}

// LogValue implements slog.LogValuer for the same reason as String.
func (s SiteCredentials) LogValue() slog.Value { return slog.StringValue(s.String()) }

// ConnectedApp reports whether connected-app credentials are given; they
// are then used instead of the PAT.
func (s SiteCredentials) ConnectedApp() bool {
	return s.ClientID != "" && s.SecretID != "" && s.SecretValue != "" && s.Username != ""
}

// missing names the keys a PAT sign-in lacks, none when the connected app
// is complete.
func (s SiteCredentials) missing() []string {
	if s.ConnectedApp() {
		return nil
	}
	var out []string
	if s.PATName == "" {
		out = append(out, "tableau_pat_name")
	}
	if s.PATSecret == "" {
		out = append(out, "tableau_pat_secret")
	}
	return out
}

// Site returns the credentials that sign in to the site with the given
// content URL: the top-level keys for "" (the default site, TABLEAU_SITE;
// callers pass "" for it whatever its content URL), else the site's entry
// in tableau_sites, found without regard to case as Tableau reads content
// URLs. A site with no entry, or an incomplete one, is a
// *MissingSiteCredentialsError: never the default site's, since a PAT or a
// connected app belongs to one site, and a PAT signed in to a second site
// would end its session on the first.
func (c *Credentials) Site(contentURL string) (SiteCredentials, error) {
	if contentURL == "" {
		return SiteCredentials{
			PATName: c.TableauPATName, PATSecret: c.TableauPATSecret,
			ClientID: c.TableauClientID, SecretID: c.TableauSecretID, SecretValue: c.TableauSecretValue, Username: c.TableauUsername,
		}, nil
	}
	sc, ok := c.TableauSites[contentURL]
	if !ok {
		for k, v := range c.TableauSites {
			if strings.EqualFold(k, contentURL) {
				sc, ok = v, true
				break
			}
		}
	}
	if !ok {
		return SiteCredentials{}, &MissingSiteCredentialsError{Site: contentURL, Missing: []string{"tableau_pat_name", "tableau_pat_secret"}, NoEntry: true}
	}
	if m := sc.missing(); len(m) > 0 {
		return SiteCredentials{}, &MissingSiteCredentialsError{Site: contentURL, Missing: m}
	}
	return sc, nil
}

// MissingSiteCredentialsError is a site other than the default with no
// credentials of its own, or incomplete ones. It names keys, never values.
type MissingSiteCredentialsError struct {
	Site    string   // the site's content URL
	Missing []string // the keys to add under tableau_sites[Site]
	NoEntry bool     // tableau_sites has no entry for the site at all
}

func (e *MissingSiteCredentialsError) Error() string {
	what := "has incomplete credentials"
	if e.NoEntry {
		what = "has no credentials of its own"
	}
	return fmt.Sprintf("Tableau site %q %s: add %s under tableau_sites[%q] (or the connected-app keys tableau_client_id, tableau_secret_id, tableau_secret_value, tableau_username)",
		e.Site, what, strings.Join(e.Missing, " and "), e.Site)
}

// EnvSites reads the credentials of other sites from TABLEAU_SITES, for
// local runs without a secret: the variable that says where each site is
// (server_url, api_version; package sites) may then carry each site's
// credentials too, under the secret's key names. Other keys are left to
// package sites, which checks them. An empty value is no sites.
func EnvSites(raw string) (map[string]SiteCredentials, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	var entries map[string]map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	if err := dec.Decode(&entries); err != nil {
		// The decoder's error may quote a secret: do not wrap it.
		return nil, errors.New(`TABLEAU_SITES: want a JSON object by site content URL, e.g. {"emea": {"server_url": "https://..."}}`)
	}
	out := make(map[string]SiteCredentials, len(entries))
	for site, fields := range entries {
		creds := map[string]json.RawMessage{}
		for k, v := range fields {
			if slices.Contains(SiteKeys, k) {
				creds[k] = v
			}
		}
		b, _ := json.Marshal(creds) // raw JSON values: cannot fail
		var sc SiteCredentials
		if err := json.Unmarshal(b, &sc); err != nil {
			return nil, fmt.Errorf("TABLEAU_SITES[%q]: the credentials' values must be strings", site)
		}
		out[site] = sc
	}
	return out, nil
}
