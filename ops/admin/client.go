package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls the admin API of a running wharf (the CLI's `wharf sessions`, `wharf reload`).
type Client struct {
	BaseURL string // http://host:port
	Token   string
	HTTP    *http.Client // default: a client with a 30s timeout
}

// BaseURL returns the URL a local client uses to reach a listener on address: a wildcard
// host (0.0.0.0, ::, "") is reached on the loopback address.
func BaseURL(address string) (string, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return "", fmt.Errorf("metrics.address %q: %w", address, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// Sessions lists the live sessions.
func (c *Client) Sessions(ctx context.Context) ([]SessionInfo, error) {
	list, _, err := c.SessionsPartial(ctx)
	return list, err
}

// SessionsPartial lists the live sessions; partial says why the list lacks other nodes'
// sessions ("" when it is whole).
func (c *Client) SessionsPartial(ctx context.Context) (list []SessionInfo, partial string, err error) {
	h, err := c.doHeader(ctx, http.MethodGet, "/admin/sessions", nil, &list)
	if err != nil {
		return nil, "", err
	}
	return list, h.Get(PartialHeader), nil
}

// Kick ends a live session, on the node that serves it in a cluster.
func (c *Client) Kick(ctx context.Context, id string) (KickResult, error) {
	var res KickResult
	err := c.do(ctx, http.MethodPost, "/admin/sessions/"+url.PathEscape(id)+"/kick", &res)
	return res, err
}

// Health checks /healthz (no token needed). detail is the degradation the server reports
// ("" when it says ok).
func (c *Client) Health(ctx context.Context) (detail string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+"/healthz", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return "", fmt.Errorf("admin API at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil {
		return "", fmt.Errorf("admin API: read reply: %w", err)
	}
	text := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return "", &APIError{Status: resp.StatusCode, Msg: text}
	}
	if text == "ok" {
		return "", nil
	}
	return text, nil
}

// ReloadCluster asks every live node of the cluster to reload its configuration and
// returns the nodes asked.
func (c *Client) ReloadCluster(ctx context.Context) ([]string, error) {
	var res ReloadResult
	if err := c.do(ctx, http.MethodPost, "/admin/reload?cluster=1", &res); err != nil {
		return nil, err
	}
	return res.Nodes, nil
}

// Reload asks the server to reload its configuration. It returns the changes the server
// could not apply without a restart; the error carries the server's reasons when the new
// configuration was refused.
func (c *Client) Reload(ctx context.Context) (notApplied []string, err error) {
	var res ReloadResult
	if err := c.do(ctx, http.MethodPost, "/admin/reload", &res); err != nil {
		return nil, err
	}
	return res.NotApplied, nil
}

// Bans lists the bans in force.
func (c *Client) Bans(ctx context.Context) ([]BanInfo, error) {
	var out []BanInfo
	err := c.do(ctx, http.MethodGet, "/admin/bans", &out)
	return out, err
}

// Ban bans an address on every site (or req.Site) and returns the bans made.
func (c *Client) Ban(ctx context.Context, req BanRequest) ([]BanInfo, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var out []BanInfo
	err = c.doBody(ctx, http.MethodPost, "/admin/bans", body, &out)
	return out, err
}

// Unban lifts the ban of addr ("all": every ban) on every site, or on site; it returns the
// bans that were in force.
func (c *Client) Unban(ctx context.Context, addr, site, reason string) ([]BanInfo, error) {
	q := url.Values{"addr": {addr}}
	if site != "" {
		q.Set("site", site)
	}
	if reason != "" {
		q.Set("reason", reason)
	}
	var out []BanInfo
	err := c.do(ctx, http.MethodDelete, "/admin/bans?"+q.Encode(), &out)
	return out, err
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	return c.doBody(ctx, method, path, nil, out)
}

func (c *Client) doBody(ctx context.Context, method, path string, body []byte, out any) error {
	_, err := c.doHeader(ctx, method, path, body, out)
	return err
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func (c *Client) doHeader(ctx context.Context, method, path string, body []byte, out any) (http.Header, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("admin API: read reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		if json.Unmarshal(reply, &e) == nil && e.Error != "" {
			return nil, &APIError{Status: resp.StatusCode, Msg: e.Error}
		}
		return nil, &APIError{Status: resp.StatusCode, Msg: strings.TrimSpace(string(reply))}
	}
	if out == nil {
		return resp.Header, nil
	}
	if err := json.Unmarshal(reply, out); err != nil {
		return nil, fmt.Errorf("admin API: decode reply: %w", err)
	}
	return resp.Header, nil
}

// APIError is a refusal from the admin API.
type APIError struct {
	Status int
	Msg    string
}

func (e *APIError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Msg, e.Status) }

// IsNotFound reports whether err says the session does not exist.
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}
