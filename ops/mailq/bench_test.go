//go:build unix

package mailq

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/internal/smtptest"
)

// spoolDir is a spool folder on tmpfs (/dev/shm) when there is one ("mem"), or on the test's
// temporary disk ("disk").
func spoolDir(b *testing.B, where string) string {
	b.Helper()
	if where == "mem" {
		dir, err := os.MkdirTemp("/dev/shm", "wharf-mailq-")
		if err == nil {
			b.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return b.TempDir()
}

// BenchmarkEnqueue is the cost of SendMail's part in the spool: render a small message, write
// it, make it durable; nothing is delivered.
func BenchmarkEnqueue(b *testing.B) {
	relay := &config.SMTP{Host: "127.0.0.1", Port: 25, TLS: "none", From: "wharf@example.com"}
	for _, where := range []string{"mem", "disk"} {
		b.Run(where, func(b *testing.B) {
			q, err := Open(Options{Dir: spoolDir(b, where), Relay: func(string) *config.SMTP { return relay },
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close(context.Background())
			i := 0
			cpu := processCPU(b)
			for b.Loop() {
				if _, err := q.Enqueue("main", &Message{To: []string{"ops@example.com"}, Subject: "Uploaded /f" + strconv.Itoa(i) + ".txt", Body: "by mona"}); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkDeliver is the cost of delivering queued messages to a relay on loopback (STARTTLS,
// AUTH), the relay's share included (it runs in this process): in batches, pipelined, and
// (plain) message by message. cpu-ns/op is the process's CPU time per message.
func BenchmarkDeliver(b *testing.B) {
	for _, mode := range []string{"pipelined", "plain"} {
		b.Run(mode, func(b *testing.B) {
			srv := smtptest.Start(b, smtptest.Options{TLS: "starttls", Username: "u", Password: "p"})
			relay := &config.SMTP{Host: srv.Host, Port: srv.Port, TLS: "starttls", CAFile: srv.CAFile, From: "wharf@example.com",
				Username: "u", Password: config.InlineSecret("p"), Timeout: config.Duration{Duration: 10 * time.Second}}
			q, err := Open(Options{Dir: spoolDir(b, "mem"), Relay: func(string) *config.SMTP { return relay },
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			q.opts.noPipelining = mode == "plain"
			defer q.Close(context.Background())
			for i := range b.N {
				if _, err := q.Enqueue("main", &Message{To: []string{"ops@example.com"}, Subject: "Uploaded /f" + strconv.Itoa(i) + ".txt", Body: "by mona"}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			cpu := processCPU(b)
			q.Start()
			if got := srv.WaitCount(b.N, time.Minute); got != b.N {
				b.Fatalf("received %d of %d", got, b.N)
			}
			for deadline := time.Now().Add(time.Minute); q.Len() > 0 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond) // the last deliveries recorded, their files removed
			}
			b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the process's user and system time so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
