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

// rollover is how long a retired key stays published: every token it
// signed (including those a replica signed before it noticed the
// rotation) has expired by then, whatever the clock skew.
func (c *PlayerConfig) rollover() time.Duration {
	return c.RealtimeTokenTTL + token.MaxClockSkew + signerReload
}

// keyring caches the key this replica signs with.
type keyring struct {
	mu       sync.Mutex
	signer   *token.Signer
	reloadAt time.Time
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
		current, err := s.currentKey(ctx)
		if err != nil {
			return nil, err
		}
		if current == nil || !now.Before(current.CreatedAt.Add(s.cfg.Players.KeyRotation)) {
			if err := s.RotateSigningKeys(ctx); err != nil {
				return nil, err
			}
			continue
		}
		seed, err := s.openKey(current)
		if err != nil {
			return nil, err
		}
		k.signer = token.NewSigner(current.ID, ed25519.NewKeyFromSeed(seed))
		k.reloadAt = now.Add(signerReload)
		if due := current.CreatedAt.Add(s.cfg.Players.KeyRotation); due.Before(k.reloadAt) {
			k.reloadAt = due
		}
		return k.signer, nil
	}
	return nil, errors.New("service: no signing key after rotating")
}

// currentKey returns the key that signs now (nil if there is none).
func (s *Service) currentKey(ctx context.Context) (*tandem.SigningKey, error) {
	var current *tandem.SigningKey
	err := s.store.View(ctx, func(tx tandem.Tx) error {
		keys, err := tx.SigningKeys(ctx)
		for _, k := range keys {
			if k.RetiredAt.IsZero() {
				current = k
				break
			}
		}
		return err
	})
	return current, err
}

// SigningPublicKeys returns the public keys realtime tokens may be signed
// with now, by key id: what /.well-known/jwks.json publishes.
func (s *Service) SigningPublicKeys(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	now := s.now()
	out := make(map[string]ed25519.PublicKey)
	err := s.store.View(ctx, func(tx tandem.Tx) error {
		keys, err := tx.SigningKeys(ctx)
		for _, k := range keys {
			if (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt)) && len(k.PublicKey) == ed25519.PublicKeySize {
				out[k.ID] = ed25519.PublicKey(k.PublicKey)
			}
		}
		return err
	})
	return out, err
}

// RotateSigningKeys creates a signing key when there is none or the
// current one has signed for KeyRotation, retires the old one (it still
// verifies for the rollover) and removes keys whose rollover is over. Every
// replica may run it at once: the store serializes rotations.
func (s *Service) RotateSigningKeys(ctx context.Context) error {
	if len(s.cfg.Players.KeyEncryptionKey) == 0 {
		return errNoKEK
	}
	now := s.now()
	a := SystemActor()
	o := op{action: "signing_key.rotate", targetType: "signing_key"}
	return s.store.Update(ctx, func(tx tandem.Tx) error {
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
		var current *tandem.SigningKey
		for _, k := range keys {
			if k.RetiredAt.IsZero() {
				current = k
				break
			}
		}
		if current != nil && now.Before(current.CreatedAt.Add(s.cfg.Players.KeyRotation)) {
			return nil
		}
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		k := &tandem.SigningKey{ID: token.KeyID(pub), PublicKey: pub, CreatedAt: now}
		if k.PrivateKeyEnc, err = s.sealKey(k.ID, priv.Seed()); err != nil {
			return err
		}
		if err := tx.CreateSigningKey(ctx, k); err != nil {
			return err
		}
		rec := s.newRecord(a, o)
		rec.TargetID = k.ID
		if current != nil {
			current.RetiredAt, current.ExpiresAt = now, now.Add(s.cfg.Players.rollover())
			if err := tx.RetireSigningKey(ctx, current); err != nil {
				return err
			}
			rec.Before = auditJSON(map[string]any{"signing": current.ID})
		}
		rec.After = auditJSON(map[string]any{"signing": k.ID})
		return s.appendAudit(ctx, tx, rec)
	})
}

var errNoKEK = errors.New("service: no key encryption key configured (--key-encryption-key)")

// sealKey encrypts a private key seed with AES-256-GCM under the key
// encryption key: a version byte, the 12-byte nonce, then the sealed seed.
// The key id is the additional data, so a sealed key cannot be passed off
// under another key's id.
func (s *Service) sealKey(kid string, seed []byte) ([]byte, error) {
	aead, err := s.keyAEAD()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(seed)+aead.Overhead())
	out[0] = 1
	rand.Read(out[1:])
	return aead.Seal(out, out[1:], seed, []byte(kid)), nil
}

// openKey decrypts a stored key's seed.
func (s *Service) openKey(k *tandem.SigningKey) ([]byte, error) {
	aead, err := s.keyAEAD()
	if err != nil {
		return nil, err
	}
	b := k.PrivateKeyEnc
	if len(b) < 1+aead.NonceSize() || b[0] != 1 {
		return nil, fmt.Errorf("service: signing key %s: unknown sealed format", k.ID)
	}
	seed, err := aead.Open(nil, b[1:1+aead.NonceSize()], b[1+aead.NonceSize():], []byte(k.ID))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("service: signing key %s does not open with this key encryption key", k.ID)
	}
	return seed, nil
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
