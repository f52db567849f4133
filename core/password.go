package core

import (
	"crypto/subtle"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/bcrypt"
)

// A failed password check must take the same time whatever the user's hash, or a client
// could tell an unknown name from a user, and a bcrypt user from an argon2id one, by the time
// a wrong guess takes. So a failed attempt runs every hash class the site's users have once
// (an algorithm with its cost parameters): the user's own check, then one configured hash of
// each other class, whose results are discarded. Every failure thus costs the sum of the
// classes, whatever the name; a site whose users all share one class (the usual case) pays
// no more than before. Success is not padded: the client learns that anyway.

// dummy is one configured hash of a class, checked to pad a failed attempt.
type dummy struct {
	class string
	hash  string
}

// hashClass names a hash's algorithm and cost parameters ("bcrypt/10",
// "argon2id/m=19456,t=2,p=1"); "" for a check that does no hashing (plain, empty).
func hashClass(hash string) string {
	switch {
	case memoryHardHash(hash):
		// $argon2id$v=19$m=19456,t=2,p=1$salt$key
		if parts := strings.Split(hash, "$"); len(parts) == 6 {
			return "argon2id/" + parts[3]
		}
		return "argon2id"
	case strings.HasPrefix(hash, "$2"):
		if cost, err := bcrypt.Cost([]byte(hash)); err == nil {
			return "bcrypt/" + strconv.Itoa(cost)
		}
		return "bcrypt"
	}
	return ""
}

// dummiesFor returns one hash of each class among hashes, the first in config order.
func dummiesFor(hashes []string) []dummy {
	var out []dummy
	for _, h := range hashes {
		c := hashClass(h)
		if c != "" && !slices.ContainsFunc(out, func(d dummy) bool { return d.class == c }) {
			out = append(out, dummy{class: c, hash: h})
		}
	}
	return out
}

// hashWork is the password hashing one authentication attempt did.
type hashWork struct {
	ran        []string // classes checked
	memoryHard bool     // an argon2id hash ran (see checkPassword)
	password   string   // the last password checked, to pad with
	padded     bool
}

// check compares password with hash and records the work.
func (w *hashWork) check(hash, password string) bool {
	ok, hard := checkPassword(hash, password)
	w.memoryHard = w.memoryHard || hard
	w.password = password
	if c := hashClass(hash); c != "" && !slices.Contains(w.ran, c) {
		w.ran = append(w.ran, c)
	}
	return ok
}

// pad checks the password against each class of dummies not run yet, so that the attempt
// has cost what every other failed attempt costs. Results are discarded.
func (w *hashWork) pad(dummies []dummy) {
	w.padded = true
	for _, d := range dummies {
		if !slices.Contains(w.ran, d.class) {
			w.check(d.hash, w.password)
		}
	}
}

// HashPassword returns an argon2id hash of password (the default of `wharf hash-password`).
func HashPassword(password string) (string, error) {
	// OWASP's recommended argon2id floor: 19 MiB, 2 iterations, 1 thread. It keeps a login
	// under ~30 ms on a small server while making offline guessing expensive.
	return argon2id.CreateHash(password, &argon2id.Params{Memory: 19 * 1024, Iterations: 2,
		Parallelism: 1, SaltLength: 16, KeyLength: 32})
}

// HashPasswordBcrypt returns a bcrypt hash (cost 10).
func HashPasswordBcrypt(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(h), err
}

// checkPassword compares password with a stored hash in constant time. An empty hash never
// matches (and costs nothing: a failed attempt is padded, see hashWork). memoryHard reports
// whether the check ran a memory-hard hash (argon2id, 19 MiB at the default cost), after
// which the site returns the freed memory to the OS.
func checkPassword(hash, password string) (ok, memoryHard bool) {
	switch {
	case hash == "":
		return false, false
	case strings.HasPrefix(hash, "plain:"):
		want := strings.TrimPrefix(hash, "plain:")
		return subtle.ConstantTimeCompare([]byte(want), []byte(password)) == 1, false
	case memoryHardHash(hash):
		match, err := argon2id.ComparePasswordAndHash(password, hash)
		return err == nil && match, true
	case strings.HasPrefix(hash, "$2"):
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil, false
	}
	return false, false
}

// memoryHardHash reports whether hash is an argon2id hash.
func memoryHardHash(hash string) bool { return strings.HasPrefix(hash, "$argon2id$") }

// checkTOTP validates a 6-digit RFC 6238 code (30 s step, one step of skew).
func checkTOTP(secret, code string, now time.Time) bool {
	if secret == "" || len(code) != 6 {
		return false
	}
	ok, err := totp.ValidateCustom(code, secret, now, totp.ValidateOpts{
		Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	return err == nil && ok
}
