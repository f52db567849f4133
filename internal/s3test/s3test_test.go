package s3test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestStart starts a gateway, stores an object and finds it both through S3 and on the host.
func TestStart(t *testing.T) {
	s := Start(t)
	dir := s.Bucket(t, "bkt")
	_, err := s.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("bkt"), Key: aws.String("a/x.txt"), Body: strings.NewReader("hello")})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := s.Object(t, "bkt", "a/x.txt"); !ok || !bytes.Equal(got, []byte("hello")) {
		t.Fatalf("object = %q, %v", got, ok)
	}
	if _, ok := s.Object(t, "bkt", "missing"); ok {
		t.Fatal("a missing object was found")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a", "x.txt")); err != nil || string(b) != "hello" {
		t.Fatalf("host file = %q, %v", b, err)
	}
}
