package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wharf-project/wharf/ops/admin"
)

// The cluster case's helpers (bench/run, section 10).

// cmdBanprop measures how long a ban made on node A (POST /admin/bans) takes to reach node
// B's ban table (GET /admin/bans lists B's local cache, the one that refuses connections),
// and how long the lift (DELETE on A) takes to leave it. Each sample uses its own address in
// 198.18.0.0/15 (RFC 2544's benchmarking range). It prints, in milliseconds:
//
//	ban p50 p99 max
//	lift p50 p99 max
//	post p50 p99 max     (A's own answer to the POST: stored and announced)
func cmdBanprop(args []string) error {
	fs := flag.NewFlagSet("banprop", flag.ContinueOnError)
	aURL := fs.String("a", "", "node A's admin base URL (http://host:port)")
	aTok := fs.String("a-token", "", "node A's admin token file")
	bURL := fs.String("b", "", "node B's admin base URL")
	bTok := fs.String("b-token", "", "node B's admin token file")
	n := fs.Int("n", 200, "samples")
	poll := fs.Duration("poll", 2*time.Millisecond, "pause between two reads of B's bans")
	timeout := fs.Duration("timeout", 10*time.Second, "give up on a sample after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *aURL == "" || *bURL == "" || *aTok == "" || *bTok == "" {
		return errors.New("banprop: -a, -a-token, -b and -b-token are required")
	}
	if *n < 1 || *n > 65000 {
		return errors.New("banprop: -n must be 1..65000")
	}
	a, err := adminClient(*aURL, *aTok)
	if err != nil {
		return err
	}
	b, err := adminClient(*bURL, *bTok)
	if err != nil {
		return err
	}
	var ban, lift, post []time.Duration
	for i := range *n {
		addr := fmt.Sprintf("198.18.%d.%d", (i+1)>>8, (i+1)&255)
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		if _, err := a.Ban(ctx, admin.BanRequest{Addr: addr, For: "10m", Reason: "bench"}); err != nil {
			cancel()
			return fmt.Errorf("banprop: ban %s on A: %w", addr, err)
		}
		post = append(post, time.Since(t0))
		if err := waitListed(ctx, b, addr, true, *poll); err != nil {
			cancel()
			return fmt.Errorf("banprop: ban %s on B: %w", addr, err)
		}
		ban = append(ban, time.Since(t0))
		t1 := time.Now()
		if _, err := a.Unban(ctx, addr, "", "bench"); err != nil {
			cancel()
			return fmt.Errorf("banprop: lift %s on A: %w", addr, err)
		}
		if err := waitListed(ctx, b, addr, false, *poll); err != nil {
			cancel()
			return fmt.Errorf("banprop: lift %s on B: %w", addr, err)
		}
		lift = append(lift, time.Since(t1))
		cancel()
	}
	for _, s := range []struct {
		name string
		d    []time.Duration
	}{{"ban", ban}, {"lift", lift}, {"post", post}} {
		fmt.Printf("%s %.1f %.1f %.1f\n", s.name, ms(percentile(s.d, 50)), ms(percentile(s.d, 99)), ms(slices.Max(s.d)))
	}
	return nil
}

func adminClient(base, tokenFile string) (*admin.Client, error) {
	tok, err := admin.ReadToken(tokenFile)
	if err != nil {
		return nil, err
	}
	return &admin.Client{BaseURL: base, Token: tok}, nil
}

// waitListed polls c's bans until addr is listed (want) or no longer listed (!want).
func waitListed(ctx context.Context, c *admin.Client, addr string, want bool, poll time.Duration) error {
	for {
		list, err := c.Bans(ctx)
		if err != nil {
			return err
		}
		found := false
		for _, b := range list {
			if b.Addr == addr {
				found = true
				break
			}
		}
		if found == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still listed=%v: %w", found, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// percentile is the nearest-rank percentile p of d.
func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cmdPgturns relays TCP connections to a PostgreSQL server and counts round trips: a turn
// is the server starting to answer after the client sent something, so a pipelined batch
// (several statements, one Sync) is one round trip however many writes carry it, and
// notifications the server pushes unasked (LISTEN) are none. On SIGUSR1 it prints the turns
// so far as "turns N"; SIGTERM/SIGINT end it.
func cmdPgturns(args []string) error {
	fs := flag.NewFlagSet("pgturns", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	to := fs.String("to", "", "the server's host:port")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("pgturns: -to is required")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println("listening", ln.Addr())
	var turns atomic.Int64
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		for {
			select {
			case <-usr1:
				fmt.Printf("turns %d\n", turns.Load())
			case <-ctx.Done():
				_ = ln.Close()
				return
			}
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			relay(ctx, c, *to, &turns)
		}()
	}
}

// relay copies between client c and the server, counting turns.
func relay(ctx context.Context, c net.Conn, to string, turns *atomic.Int64) {
	defer c.Close()
	s, err := net.DialTimeout("tcp", to, 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgturns:", err)
		return
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.Close(); _ = s.Close() })
	defer stop()
	// asked: the client has sent bytes the server has not started answering yet.
	var asked atomic.Bool
	done := make(chan struct{}, 2)
	go func() {
		copyCounting(s, c, func() { asked.Store(true) })
		_ = s.(*net.TCPConn).CloseWrite()
		done <- struct{}{}
	}()
	go func() {
		copyCounting(c, s, func() {
			if asked.Swap(false) {
				turns.Add(1)
			}
		})
		_ = c.(*net.TCPConn).CloseWrite()
		done <- struct{}{}
	}()
	<-done
	<-done
}

// copyCounting copies src to dst, calling seen before writing each chunk read.
func copyCounting(dst io.Writer, src io.Reader, seen func()) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			seen()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
				fmt.Fprintln(os.Stderr, "pgturns:", err)
			}
			return
		}
	}
}
