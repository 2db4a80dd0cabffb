package tableau

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// ServerInfo describes the server. See
// https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_server.htm#server_info.
type ServerInfo struct {
	ProductVersion string // e.g. "2023.3.0"
	Build          string // e.g. "20233.23.1017.0948"
	RestAPIVersion string // e.g. "3.21"
}

// ServerInfo returns the server's product and REST API versions. It needs no
// sign-in.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_server.htm#server_info.
func (c *Client) ServerInfo(ctx context.Context) (*ServerInfo, error) {
	v, err := c.apiVersion(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	cached := c.serverInfo
	c.mu.Unlock()
	if cached != nil {
		cp := *cached
		return &cp, nil
	}
	return c.fetchServerInfo(ctx, v)
}

func (c *Client) fetchServerInfo(ctx context.Context, version string) (*ServerInfo, error) {
	raw := &rawReply{}
	r := &request{method: http.MethodGet, path: "serverinfo", version: version, out: raw}
	if err := c.exchange(ctx, r, nil); err != nil {
		return nil, fmt.Errorf("get server info: %w", err)
	}
	body := bytes.TrimSpace(raw.body)
	info := &ServerInfo{}
	if kind := nonJSONKind(raw.contentType, body); kind == "XML" {
		// Servers may answer this old-version URL in XML whatever Accept says
		// (the official client only ever reads it as XML); the version is all
		// we need from it.
		var x struct {
			ServerInfo struct {
				ProductVersion struct {
					Value string `xml:",chardata"`
					Build string `xml:"build,attr"`
				} `xml:"productVersion"`
				RestAPIVersion string `xml:"restApiVersion"`
			} `xml:"serverInfo"`
		}
		if err := xml.Unmarshal(body, &x); err != nil {
			return nil, &FormatError{StatusCode: raw.status, ContentType: raw.contentType, Method: r.method,
				Path: raw.path, Received: "malformed XML", Err: err, Snippet: snippet(body)}
		}
		info.ProductVersion = strings.TrimSpace(x.ServerInfo.ProductVersion.Value)
		info.Build = x.ServerInfo.ProductVersion.Build
		info.RestAPIVersion = strings.TrimSpace(x.ServerInfo.RestAPIVersion)
		return info, nil
	}
	var reply struct {
		ServerInfo *struct {
			ProductVersion flexText `json:"productVersion"`
			RestAPIVersion string   `json:"restApiVersion"`
		} `json:"serverInfo"`
	}
	if err := decodeJSON(&request{method: r.method, out: &reply}, raw.path, raw.status, raw.contentType, body); err != nil {
		return nil, fmt.Errorf("get server info: %w", err)
	}
	if reply.ServerInfo == nil {
		return nil, fmt.Errorf("get server info: %w", &FormatError{StatusCode: raw.status, ContentType: raw.contentType,
			Method: r.method, Path: raw.path, Received: "JSON without a serverInfo object", Snippet: snippet(body)})
	}
	info.ProductVersion = reply.ServerInfo.ProductVersion.Value
	info.Build = reply.ServerInfo.ProductVersion.Build
	info.RestAPIVersion = reply.ServerInfo.RestAPIVersion
	return info, nil
}

// apiVersion returns the fixed version, or negotiates it once the way the
// official Python client does: ask /api/2.4/serverinfo, adopt its
// restApiVersion, keep DefaultAPIVersion when the endpoint is missing.
func (c *Client) apiVersion(ctx context.Context) (string, error) {
	if c.fixedVer != "" {
		return c.fixedVer, nil
	}
	c.mu.Lock()
	v := c.version
	c.mu.Unlock()
	if v != "" {
		return v, nil
	}
	if err := c.versionMu.lock(ctx); err != nil {
		return "", fmt.Errorf("tableau: negotiate API version: %w", err)
	}
	defer c.versionMu.unlock()
	c.mu.Lock()
	v = c.version
	c.mu.Unlock()
	if v != "" {
		return v, nil
	}
	info, err := c.fetchServerInfo(ctx, negotiationVersion)
	switch {
	case errors.Is(err, ErrNotFound):
		c.logger.InfoContext(ctx, "tableau serverinfo not found; using default API version", "version", DefaultAPIVersion)
		v = DefaultAPIVersion
	case err != nil:
		// Not cached: the next call asks again, so a blip does not pin a guess.
		return "", fmt.Errorf("tableau: negotiate API version: %w", err)
	case !validVersion(info.RestAPIVersion):
		c.logger.WarnContext(ctx, "tableau serverinfo gave no usable restApiVersion; using default",
			"got", info.RestAPIVersion, "version", DefaultAPIVersion)
		v = DefaultAPIVersion
	default:
		v = info.RestAPIVersion
	}
	c.mu.Lock()
	c.version = v
	if info != nil {
		c.serverInfo = info
	}
	c.mu.Unlock()
	c.logger.DebugContext(ctx, "tableau API version", "version", v)
	return v, nil
}

// requireVersion fails early, with a clear message, for calls the server's
// API version does not have.
func (c *Client) requireVersion(ctx context.Context, call, min string) error {
	v, err := c.apiVersion(ctx)
	if err != nil {
		return err
	}
	if versionLess(v, min) {
		return fmt.Errorf("tableau: %s needs REST API %s or later, client uses %s: %w", call, min, v, ErrUnsupportedVersion)
	}
	return nil
}

// validVersion reports whether v has the MAJOR.MINOR form of an API version.
func validVersion(v string) bool {
	major, minor, ok := strings.Cut(v, ".")
	return ok && allDigits(major) && allDigits(minor)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// versionLess compares MAJOR.MINOR versions, which validVersion has
// checked: a part that does not parse counts as 0.
func versionLess(a, b string) bool {
	am, an := versionParts(a)
	bm, bn := versionParts(b)
	if am != bm {
		return am < bm
	}
	return an < bn
}

func versionParts(v string) (major, minor int) {
	ma, mi, _ := strings.Cut(v, ".")
	major, _ = strconv.Atoi(ma)
	minor, _ = strconv.Atoi(mi)
	return major, minor
}
