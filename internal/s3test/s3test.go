// Package s3test runs a real S3 server for tests: Versity's S3 gateway (versitygw) with its
// posix backend on a temporary folder, on a free loopback port. Objects are plain files
// there (bucket "b", key "a/b.txt" is <Dir>/b/a/b.txt), so a test can check on the host
// what did or did not reach the store.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/internal/childproc"
)

// Region is the region the gateway answers for.
const Region = "us-east-1"

// Server is a running versitygw.
type Server struct {
	Endpoint  string // http://127.0.0.1:port
	AccessKey string // the root account's keys
	SecretKey string
	Dir       string // the posix backend's folder: one sub-folder per bucket

	cmd    *exec.Cmd
	done   chan struct{}
	output *childproc.Output
}

// Start starts a gateway for the test and stops it when the test ends. The test is skipped
// when versitygw is not installed, and fails when WHARF_E2E=1 says it must be.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := coretest.NeedBinary(t, "versitygw")
	dir := t.TempDir()
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	s := &Server{AccessKey: "wharftest", SecretKey: hex.EncodeToString(rnd[:]), Dir: dir}
	// A port taken between the probe and the gateway's bind makes the gateway exit; retry.
	var lastErr error
	for range 5 {
		port, err := childproc.FreePort()
		if err != nil {
			t.Fatalf("s3test: free port: %v", err)
		}
		if lastErr = s.run(t, bin, port); lastErr == nil {
			t.Cleanup(s.stop)
			return s
		}
	}
	t.Fatalf("s3test: versitygw did not start: %v", lastErr)
	return nil
}

// run starts the gateway on port and waits until it answers S3 requests.
func (s *Server) run(t testing.TB, bin string, port int) error {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "--port", addr, "--region", Region, "posix", s.Dir)
	// The keys go through the environment, not the command line other users can read.
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	s.output = &childproc.Output{}
	cmd.Stdout, cmd.Stderr = s.output, s.output
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.done, s.Endpoint = cmd, make(chan struct{}), "http://"+addr
	go func() { _ = cmd.Wait(); close(s.done) }()
	c := s.Client()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("exited: %s", s.output.String())
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("no answer after 20 s: %v; output: %s", err, s.output.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the gateway: SIGTERM, then SIGKILL after 5 s.
func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	childproc.Stop(s.cmd.Process, os.Interrupt, s.done, 5*time.Second)
}

// Client returns an S3 client for the gateway's root account (path-style addressing).
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// Bucket creates a bucket and returns its folder on the host.
func (s *Server) Bucket(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("s3test: create bucket %s: %v", name, err)
	}
	return filepath.Join(s.Dir, name)
}

// Uploads lists the incomplete multipart uploads of a bucket under prefix, as "key" strings.
func (s *Server) Uploads(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := s.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{
		Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatalf("s3test: list multipart uploads: %v", err)
	}
	keys := make([]string, 0, len(out.Uploads))
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

// Object reads an object, or reports that it does not exist.
func (s *Server) Object(t testing.TB, bucket, key string) ([]byte, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := s.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var nk interface{ ErrorCode() string }
		if errors.As(err, &nk) && (nk.ErrorCode() == "NoSuchKey" || nk.ErrorCode() == "NotFound") {
			return nil, false
		}
		t.Fatalf("s3test: get %s: %v", key, err)
	}
	defer out.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(out.Body); err != nil {
		t.Fatalf("s3test: read %s: %v", key, err)
	}
	return b.Bytes(), true
}

// Stop ends the gateway now (a store that goes away mid-transfer); cleanup does it anyway.
func (s *Server) Stop() { s.stop() }
