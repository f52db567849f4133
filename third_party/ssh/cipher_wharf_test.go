package ssh

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/poly1305"
)

// refChaChaWrite is upstream's writeCipherPacket for chacha20-poly1305@openssh.com, with the
// generic ChaCha20 for the whole content: the reference that the AEAD keystream must match.
func refChaChaWrite(t *testing.T, key []byte, seqNum uint32, padding []byte, payload []byte) []byte {
	t.Helper()
	nonce := make([]byte, 12)
	binary.BigEndian.PutUint32(nonce[8:], seqNum)
	s, err := chacha20.NewUnauthenticatedCipher(key[:32], nonce)
	if err != nil {
		t.Fatal(err)
	}
	var polyKey [32]byte
	s.XORKeyStream(polyKey[:], polyKey[:])
	s.SetCounter(1)
	buf := make([]byte, 4+1+len(payload)+len(padding)+poly1305.TagSize)
	binary.BigEndian.PutUint32(buf, uint32(1+len(payload)+len(padding)))
	ls, err := chacha20.NewUnauthenticatedCipher(key[32:], nonce)
	if err != nil {
		t.Fatal(err)
	}
	ls.XORKeyStream(buf[:4], buf[:4])
	buf[4] = byte(len(padding))
	copy(buf[5:], payload)
	copy(buf[5+len(payload):], padding)
	packetEnd := len(buf) - poly1305.TagSize
	s.XORKeyStream(buf[4:packetEnd], buf[4:packetEnd])
	var mac [poly1305.TagSize]byte
	poly1305.Sum(&mac, buf[:packetEnd], &polyKey)
	copy(buf[packetEnd:], mac[:])
	return buf
}

// recordingReader hands out random bytes and keeps them, so the padding a packet got can be
// given to the reference.
type recordingReader struct {
	r   *rand.ChaCha8
	got []byte
}

func (r *recordingReader) Read(p []byte) (int, error) {
	n, _ := r.r.Read(p)
	r.got = append(r.got, p[:n]...)
	return n, nil
}

// TestChaCha20BulkMatchesGeneric checks wharf's change to the chacha20-poly1305 cipher: for
// content lengths on both sides of bulkMin and up to the largest packets, and for sequence
// numbers at both ends, the packets written are byte for byte those of the generic code, and
// they read back (through the same cipher state, reused as a connection reuses it).
func TestChaCha20BulkMatchesGeneric(t *testing.T) {
	seed := [32]byte{1, 2, 3}
	rnd := rand.New(rand.NewChaCha8(seed))
	key := make([]byte, 64)
	for i := range key {
		key[i] = byte(rnd.Uint32())
	}
	w, err := newChaCha20Cipher(key, nil, nil, DirectionAlgorithms{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := newChaCha20Cipher(key, nil, nil, DirectionAlgorithms{})
	if err != nil {
		t.Fatal(err)
	}
	var lengths []int
	for n := 1; n <= 600; n++ { // an empty payload is refused on reading
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 1000, 4096, 32768-9, 32768, 35000, maxPacket-64)
	seqs := []uint32{0, 1, 0x7fffffff, 0xfffffffe, 0xffffffff}
	for i, n := range lengths {
		seq := seqs[i%len(seqs)] + uint32(i/len(seqs))
		payload := make([]byte, n)
		for j := range payload {
			payload[j] = byte(rnd.Uint32())
		}
		rec := &recordingReader{r: rand.NewChaCha8([32]byte{byte(i), byte(i >> 8)})}
		var out bytes.Buffer
		if err := w.writeCipherPacket(seq, &out, rec, payload); err != nil {
			t.Fatalf("len %d: write: %v", n, err)
		}
		want := refChaChaWrite(t, key, seq, rec.got, payload)
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("len %d seq %d: packet differs from the generic cipher's", n, seq)
		}
		got, err := r.readCipherPacket(seq, bytes.NewReader(want))
		if err != nil {
			t.Fatalf("len %d seq %d: read: %v", n, seq, err)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("len %d seq %d: payload read back differs", n, seq)
		}
		// A flipped bit anywhere is refused, and does not leave the state unusable.
		bad := bytes.Clone(want)
		bad[4+rnd.IntN(len(bad)-4)] ^= 0x10
		if _, err := r.readCipherPacket(seq, bytes.NewReader(bad)); err == nil {
			t.Fatalf("len %d: a corrupted packet was accepted", n)
		}
	}
}

func BenchmarkChaCha20Packet(b *testing.B) {
	key := make([]byte, 64)
	for _, n := range []int{64, 1024, 32768} {
		payload := make([]byte, n)
		b.Run(fmt.Sprintf("write/%d", n), func(b *testing.B) {
			c, _ := newChaCha20Cipher(key, nil, nil, DirectionAlgorithms{})
			b.SetBytes(int64(n))
			var seq uint32
			for b.Loop() {
				seq++
				if err := c.writeCipherPacket(seq, io.Discard, zeroReader{}, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("read/%d", n), func(b *testing.B) {
			c, _ := newChaCha20Cipher(key, nil, nil, DirectionAlgorithms{})
			var pkt bytes.Buffer
			if err := c.writeCipherPacket(7, &pkt, zeroReader{}, payload); err != nil {
				b.Fatal(err)
			}
			rd := bytes.NewReader(nil)
			b.SetBytes(int64(n))
			for b.Loop() {
				rd.Reset(pkt.Bytes())
				if _, err := c.readCipherPacket(7, rd); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }
