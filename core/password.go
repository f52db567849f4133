package core

import (
	"crypto/subtle"
	"strings"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/bcrypt"
)

// dummyHash is compared against when the user does not exist, so that an unknown user costs
// the same time as a wrong password (no user enumeration by timing).
const dummyHash = "$2a$10$gk67jnghsP2FbV59AMbg/eE8udJECZWuxdBik48JDnyS4.IDEyZeC"

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
// matches.
func checkPassword(hash, password string) bool {
	switch {
	case hash == "":
		_ = bcrypt.CompareHashAndPassword([]byte(dummyHash), []byte(password))
		return false
	case strings.HasPrefix(hash, "plain:"):
		want := strings.TrimPrefix(hash, "plain:")
		return subtle.ConstantTimeCompare([]byte(want), []byte(password)) == 1
	case strings.HasPrefix(hash, "$argon2id$"):
		ok, err := argon2id.ComparePasswordAndHash(password, hash)
		return err == nil && ok
	case strings.HasPrefix(hash, "$2"):
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	}
	return false
}

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
