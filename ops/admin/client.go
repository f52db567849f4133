package admin

import (
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
	var out []SessionInfo
	err := c.do(ctx, http.MethodGet, "/admin/sessions", &out)
	return out, err
}

// Kick ends a live session.
func (c *Client) Kick(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/admin/sessions/"+url.PathEscape(id)+"/kick", nil)
}

// Health checks /healthz (no token needed).
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil)
}

// Reload asks the server to reload its configuration; the error carries the server's reasons
// when the new configuration was refused.
func (c *Client) Reload(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/admin/reload", nil)
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, nil)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin API at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("admin API: read reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return &APIError{Status: resp.StatusCode, Msg: e.Error}
		}
		return &APIError{Status: resp.StatusCode, Msg: strings.TrimSpace(string(body))}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("admin API: decode reply: %w", err)
	}
	return nil
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
