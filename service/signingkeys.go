package service

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/token"
)

// signerReload bounds how long a replica signs with a key it loaded before
// it looks again: after a rotation elsewhere it switches within this long.
const signerReload = 30 * time.Second

// keyPrepublish is how long a new key is published before it signs, so
// that caches of the key set (max-age 60 s) and nodes know it before the
// first token it signs arrives.
const keyPrepublish = 2 * time.Minute

// rollover is how long a retired key stays published: every token it
// signed (including those a replica signed before it noticed the
// rotation) has expired by then, whatever the clock skew.
func (c *PlayerConfig) rollover() time.Duration {
	return c.RealtimeTokenTTL + token.MaxClockSkew + signerReload
}

// keyring caches the key this replica signs with, and the keys it has
// checked open under the key encryption key.
type keyring struct {
	mu       sync.Mutex
	signer   *token.Signer
	reloadAt time.Time
	verified map[string]bool // key id → its sealed private key opens and matches
}

// signingKey picks the key that signs at now from keys (newest first): the
// newest unretired key published for keyPrepublish, or else the oldest
// unretired one (the first key ever signs at once). It also returns the
// unretired keys older than it, which the next rotation retires.
func signingKey(keys []*tandem.SigningKey, now time.Time) (current *tandem.SigningKey, older []*tandem.SigningKey) {
	var live []*tandem.SigningKey
	for _, k := range keys {
		if k.RetiredAt.IsZero() {
			live = append(live, k)
		}
	}
	for i, k := range live {
		if !now.Before(k.CreatedAt.Add(keyPrepublish)) {
			return k, live[i+1:]
		}
	}
	if len(live) == 0 {
		return nil, nil
	}
	return live[len(live)-1], nil
}

// signer returns the key to sign realtime tokens with now, creating the
// first one or rotating when it is due.
func (s *Service) signer(ctx context.Context) (*token.Signer, error) {
	k := &s.keys
	k.mu.Lock()
	defer k.mu.Unlock()
	now := s.now()
	if k.signer != nil && now.Before(k.reloadAt) {
		return k.signer, nil
	}
	for range 2 {
		var keys []*tandem.SigningKey
		err := s.store.View(ctx, func(tx tandem.Tx) (err error) {
			keys, err = tx.SigningKeys(ctx)
			return err
		})
		if err != nil {
			return nil, err
		}
		current, _ := signingKey(keys, now)
		if current == nil || s.rotationDue(keys, now) {
			if err := s.RotateSigningKeys(ctx); err != nil {
				return nil, err
			}
			if current == nil {
				continue
			}
		}
		priv, err := s.openKey(current)
		if err != nil {
			return nil, err
		}
		k.signer = token.NewSigner(current.ID, priv)
		k.reloadAt = now.Add(signerReload)
		return k.signer, nil
	}
	return nil, errors.New("service: no signing key after rotating")
}

// CheckSigningKey makes sure this server can sign: the key that signs now
// (made if there is none) opens under the key encryption key. A server
// started with another KEK than the keys were sealed with fails here, at
// start, rather than at every login.
func (s *Service) CheckSigningKey(ctx context.Context) error {
	if _, err := s.signer(ctx); err != nil {
		return fmt.Errorf("%w (is --key-encryption-key the file the keys were sealed with? every replica needs the same one)", err)
	}
	return nil
}

// rotationDue reports whether a new key should be made: the signing key
// has signed for nearly KeyRotation and no newer key is waiting.
func (s *Service) rotationDue(keys []*tandem.SigningKey, now time.Time) bool {
	current, _ := signingKey(keys, now)
	if current == nil {
		return true
	}
	if len(keys) > 0 && keys[0] != current && keys[0].RetiredAt.IsZero() {
		return false // the next key is published already
	}
	return !now.Before(current.CreatedAt.Add(s.cfg.Players.KeyRotation - keyPrepublish))
}

// SigningPublicKeys returns the public keys realtime tokens may be signed
// with now, by key id: what /.well-known/jwks.json publishes. Only keys
// whose sealed private half opens under the key encryption key and matches
// are published: a row written straight into the database is not trusted.
func (s *Service) SigningPublicKeys(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	now := s.now()
	var keys []*tandem.SigningKey
	err := s.store.View(ctx, func(tx tandem.Tx) (err error) {
		keys, err = tx.SigningKeys(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]ed25519.PublicKey)
	for _, k := range keys {
		if !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) {
			continue
		}
		if !s.keyVerified(k) {
			s.log.Error("signing key not published: it does not open under the key encryption key", "kid", k.ID)
			continue
		}
		out[k.ID] = ed25519.PublicKey(k.PublicKey)
	}
	return out, nil
}

// keyVerified reports whether k's private half opens and matches its id
// and public key, remembering the answer per key id.
func (s *Service) keyVerified(k *tandem.SigningKey) bool {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	if ok, seen := s.keys.verified[k.ID]; seen {
		return ok
	}
	_, err := s.openKey(k)
	if s.keys.verified == nil {
		s.keys.verified = make(map[string]bool)
	}
	s.keys.verified[k.ID] = err == nil
	return err == nil
}

// RotateSigningKeys keeps the signing keys current: it makes the first key,
// publishes the next one keyPrepublish before the current one has signed
// for KeyRotation, retires the keys the new one replaced (they verify for
// the rollover) and removes keys whose rollover is over. Every replica may
// run it at once: the store serializes rotations.
func (s *Service) RotateSigningKeys(ctx context.Context) error {
	if len(s.cfg.Players.KeyEncryptionKey) == 0 {
		return errNoKEK
	}
	now := s.now()
	err := s.store.Update(ctx, func(tx tandem.Tx) error {
		if err := tx.LockSigningKeys(ctx); err != nil {
			return err
		}
		if _, err := tx.DeleteExpiredSigningKeys(ctx, now); err != nil {
			return err
		}
		keys, err := tx.SigningKeys(ctx)
		if err != nil {
			return err
		}
		current, older := signingKey(keys, now)
		for _, k := range older {
			k.RetiredAt, k.ExpiresAt = now, now.Add(s.cfg.Players.rollover())
			if err := tx.RetireSigningKey(ctx, k); err != nil {
				return err
			}
			rec := s.newRecord(SystemActor(), op{action: "signing_key.retire", targetType: "signing_key", targetID: k.ID})
			rec.After = auditJSON(map[string]any{"signing": current.ID, "expires_at": k.ExpiresAt})
			if err := s.appendAudit(ctx, tx, rec); err != nil {
				return err
			}
		}
		if !s.rotationDue(keys, now) {
			return nil
		}
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		k := &tandem.SigningKey{ID: token.KeyID(pub), PublicKey: pub, CreatedAt: now}
		if k.PrivateKeyEnc, err = s.sealKey(k.ID, pub, priv.Seed()); err != nil {
			return err
		}
		if err := tx.CreateSigningKey(ctx, k); err != nil {
			return err
		}
		rec := s.newRecord(SystemActor(), op{action: "signing_key.create", targetType: "signing_key", targetID: k.ID})
		after := map[string]any{"signs_from": now}
		if current != nil {
			after["signs_from"] = now.Add(keyPrepublish)
			after["replaces"] = current.ID
		}
		rec.After = auditJSON(after)
		return s.appendAudit(ctx, tx, rec)
	})
	if err == nil {
		// The key bucket follows at once: nodes must know a key before
		// tokens signed with it reach them.
		s.wakeJob(ctx, jobKeys)
	}
	return err
}

var errNoKEK = errors.New("service: no key encryption key configured (--key-encryption-key)")

// sealKey encrypts a private key seed with AES-256-GCM under the key
// encryption key: a version byte, the 12-byte nonce, then the sealed seed.
// The key id and the public key are the additional data, so a sealed key
// cannot be passed off under another key's name.
func (s *Service) sealKey(kid string, pub ed25519.PublicKey, seed []byte) ([]byte, error) {
	aead, err := s.keyAEAD()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(seed)+aead.Overhead())
	out[0] = 1
	rand.Read(out[1:])
	return aead.Seal(out, out[1:], seed, keyAAD(kid, pub)), nil
}

func keyAAD(kid string, pub []byte) []byte { return append([]byte(kid+"\x00"), pub...) }

// openKey decrypts a stored key and checks that it is the key its id and
// public key name.
func (s *Service) openKey(k *tandem.SigningKey) (ed25519.PrivateKey, error) {
	aead, err := s.keyAEAD()
	if err != nil {
		return nil, err
	}
	b := k.PrivateKeyEnc
	if len(b) < 1+aead.NonceSize() || b[0] != 1 {
		return nil, fmt.Errorf("service: signing key %s: unknown sealed format", k.ID)
	}
	seed, err := aead.Open(nil, b[1:1+aead.NonceSize()], b[1+aead.NonceSize():], keyAAD(k.ID, k.PublicKey))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("service: signing key %s does not open with this key encryption key", k.ID)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if pub := priv.Public().(ed25519.PublicKey); !pub.Equal(ed25519.PublicKey(k.PublicKey)) || token.KeyID(pub) != k.ID {
		return nil, fmt.Errorf("service: signing key %s does not match its public key", k.ID)
	}
	return priv, nil
}

func (s *Service) keyAEAD() (cipher.AEAD, error) {
	if len(s.cfg.Players.KeyEncryptionKey) == 0 {
		return nil, errNoKEK
	}
	block, err := aes.NewCipher(s.cfg.Players.KeyEncryptionKey)
	if err != nil {
		return nil, fmt.Errorf("service: key encryption key: %w", err)
	}
	return cipher.NewGCM(block)
}
