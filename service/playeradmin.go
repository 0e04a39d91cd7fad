package service

import (
	"context"
	"crypto/hmac"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tandemhq/tandem"
)

// Player administration: what admins, API keys (the game's own servers)
// and the CLI do to players. Audit records name the player by id only and
// never copy personal data (names, emails, device ids, addresses) into the
// append-only log: account deletion must be able to erase it.

const (
	maxSearchLen   = 254
	maxBanReason   = 500
	maxNoteLen     = 2000
	detailLogins   = 20
	searchDefault  = 50
	searchMaxLimit = 200
)

// SearchPlayers finds players by id, device id, email or part of a display
// name (players:read).
func (s *Service) SearchPlayers(ctx context.Context, a *Actor, query string, limit int) ([]*tandem.PlayerAccount, error) {
	if utf8.RuneCountInString(query) > maxSearchLen || !validText(query) {
		return nil, tandem.Invalid([]tandem.FieldError{{Field: "q", Message: "use at most 254 characters of text"}})
	}
	if limit <= 0 {
		limit = searchDefault
	}
	limit = min(limit, searchMaxLimit)
	var out []*tandem.PlayerAccount
	err := s.view(ctx, a, op{action: "player.search", perm: tandem.PermPlayersRead}, func(tx tandem.Tx) (err error) {
		out, err = tx.SearchPlayers(ctx, tandem.PlayerFilter{Query: query, Limit: limit})
		return err
	})
	return out, err
}

// CountPlayers counts accounts, deleted ones too (players:read).
func (s *Service) CountPlayers(ctx context.Context, a *Actor) (int, error) {
	var n int
	err := s.view(ctx, a, op{action: "player.count", perm: tandem.PermPlayersRead}, func(tx tandem.Tx) (err error) {
		n, err = tx.CountPlayers(ctx)
		return err
	})
	return n, err
}

// PlayerDetail returns a player with devices, recent logins, sessions,
// bans and notes (players:read).
func (s *Service) PlayerDetail(ctx context.Context, a *Actor, playerID string) (*PlayerDetail, error) {
	if err := checkPlayerID(playerID); err != nil {
		return nil, err
	}
	d := &PlayerDetail{}
	o := op{action: "player.read", perm: tandem.PermPlayersRead, targetType: "player", targetID: playerID}
	err := s.view(ctx, a, o, func(tx tandem.Tx) (err error) {
		if d.Player, err = tx.Player(ctx, playerID); err != nil {
			return err
		}
		if d.Devices, err = tx.PlayerDevices(ctx, playerID); err != nil {
			return err
		}
		if d.Logins, err = tx.LoginRecords(ctx, playerID, detailLogins); err != nil {
			return err
		}
		if d.Sessions, err = tx.PlayerSessions(ctx, playerID); err != nil {
			return err
		}
		if d.Bans, err = tx.Bans(ctx, playerID); err != nil {
			return err
		}
		d.Notes, err = tx.PlayerNotes(ctx, playerID)
		return err
	})
	if err != nil {
		return nil, err
	}
	d.BannedDevices = make(map[int64]string)
	for _, b := range d.Bans {
		for _, dev := range d.Devices {
			if b.Scope == tandem.BanDevice && hmac.Equal(b.DeviceHash, s.deviceHash(dev.ID)) {
				d.BannedDevices[b.ID] = dev.ID
			}
		}
	}
	return d, nil
}

// BansInForce tells which of the players a ban made on them keeps out now
// (the account, else one of their devices) (players:read), for marking search results: one read
// transaction whatever the number of players.
func (s *Service) BansInForce(ctx context.Context, a *Actor, playerIDs []string) (map[string]tandem.BanScope, error) {
	now := s.now()
	out := make(map[string]tandem.BanScope)
	err := s.view(ctx, a, op{action: "player.search", perm: tandem.PermPlayersRead}, func(tx tandem.Tx) error {
		for _, id := range playerIDs {
			if !isPlayerID(id) {
				continue
			}
			bans, err := tx.Bans(ctx, id)
			if err != nil {
				return err
			}
			for _, b := range bans {
				if b.ActiveAt(now) && out[id] != tandem.BanAccount {
					out[id] = b.Scope
				}
			}
		}
		return nil
	})
	return out, err
}

// banView is a ban as the audit log records it: neither the device nor the
// reason, which is free text that may name the player (the ban row keeps
// it), so that the append-only log holds nothing account deletion must
// erase.
func banView(b *tandem.Ban) map[string]any {
	v := map[string]any{"id": b.ID, "scope": b.Scope, "starts_at": b.StartsAt, "ends_at": nil}
	if !b.EndsAt.IsZero() {
		v["ends_at"] = b.EndsAt
	}
	if !b.LiftedAt.IsZero() {
		v["lifted_at"] = b.LiftedAt
	}
	return v
}

// BanPlayer bans a player's account or one of their devices (players:ban).
// From its start, logins, refreshes, realtime tokens and player API calls
// it covers are refused with EBanned.
func (s *Service) BanPlayer(ctx context.Context, a *Actor, in BanRequest) (*tandem.Ban, error) {
	if err := checkPlayerID(in.PlayerID); err != nil {
		return nil, err
	}
	now := s.now()
	b := &tandem.Ban{PlayerID: in.PlayerID, Scope: in.Scope, Reason: in.Reason, StartsAt: in.StartsAt, EndsAt: in.EndsAt, CreatedAt: now}
	if b.StartsAt.IsZero() {
		b.StartsAt = now
	}
	b.StartsAt, b.EndsAt = b.StartsAt.UTC().Truncate(time.Microsecond), b.EndsAt.UTC().Truncate(time.Microsecond)
	var fields []tandem.FieldError
	switch in.Scope {
	case tandem.BanAccount, tandem.BanDevice:
	default:
		fields = append(fields, tandem.FieldError{Field: "scope", Message: "must be account or device"})
	}
	if in.Scope == tandem.BanDevice && in.DeviceID == "" {
		fields = append(fields, tandem.FieldError{Field: "device_id", Message: "is required for a device ban"})
	}
	if n := utf8.RuneCountInString(in.Reason); n == 0 || n > maxBanReason || !validText(in.Reason) {
		fields = append(fields, tandem.FieldError{Field: "reason", Message: "write 1 to 500 characters; the player sees it"})
	}
	if !b.EndsAt.IsZero() && !b.EndsAt.After(b.StartsAt) {
		fields = append(fields, tandem.FieldError{Field: "ends_at", Message: "must be after the start"})
	}
	if err := tandem.Invalid(fields); err != nil {
		return nil, err
	}
	if a != nil {
		b.CreatedByName = a.Name
		if a.Kind == tandem.ActorAdmin {
			b.CreatedBy = a.ID
		}
	}
	o := op{action: "player.ban", perm: tandem.PermPlayersBan, targetType: "player", targetID: in.PlayerID}
	err := s.update(ctx, a, o, func(tx tandem.Tx, rec *tandem.AuditRecord) error {
		if _, err := tx.Player(ctx, in.PlayerID); err != nil {
			return err
		}
		if in.Scope == tandem.BanDevice {
			devices, err := tx.PlayerDevices(ctx, in.PlayerID)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(devices, func(d *tandem.PlayerDevice) bool { return d.ID == in.DeviceID }) {
				return tandem.Invalid([]tandem.FieldError{{Field: "device_id", Message: "is not a device of this player"}})
			}
			b.DeviceHash = s.deviceHash(in.DeviceID)
		}
		if err := tx.CreateBan(ctx, b); err != nil {
			return err
		}
		// Sessions stay: every refresh, token issue and player API call
		// checks the bans, so the player is told they are banned and until
		// when, and a temporary ban leaves them logged in when it ends.
		// "Log out everywhere" is the separate step that ends sessions.
		after := banView(b)
		rec.After = auditJSON(after)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if b.Scope == tandem.BanAccount {
		// Realtime nodes learn of account bans from the bans bucket.
		s.wakeJob(ctx, jobBans)
	}
	return b, nil
}

// LiftBan ends one of a player's bans early (players:ban). The ban must
// be the player's: the caller names both (a page or path of that player),
// and another player's ban is as unknown as a missing one. It needs
// nothing but players:ban, so a support role that may only ban can unban.
func (s *Service) LiftBan(ctx context.Context, a *Actor, playerID string, banID int64) (*tandem.Ban, error) {
	if err := checkPlayerID(playerID); err != nil {
		return nil, err
	}
	var b *tandem.Ban
	o := op{action: "player.unban", perm: tandem.PermPlayersBan, targetType: "ban", targetID: strconv.FormatInt(banID, 10)}
	err := s.update(ctx, a, o, func(tx tandem.Tx, rec *tandem.AuditRecord) (err error) {
		b, err = tx.Ban(ctx, banID)
		if tandem.ErrorCodeOf(err) == tandem.ENotFound || (err == nil && b.PlayerID != playerID) {
			return tandem.Errorf(tandem.ENotFound, "no such ban")
		}
		if err != nil {
			return err
		}
		if !b.LiftedAt.IsZero() {
			return tandem.Errorf(tandem.EConflict, "the ban was lifted already")
		}
		rec.Before = auditJSON(banView(b))
		b.LiftedAt, b.LiftedByName = s.now(), a.Name
		if a.Kind == tandem.ActorAdmin {
			b.LiftedBy = a.ID
		}
		if err := tx.UpdateBan(ctx, b); err != nil {
			return err
		}
		after := banView(b)
		after["player"] = b.PlayerID
		rec.After = auditJSON(after)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if b.Scope == tandem.BanAccount {
		s.wakeJob(ctx, jobBans)
	}
	return b, nil
}

// LogoutPlayerEverywhere ends every session of a player, web and
// realtime, and returns how many web sessions ended (players:ban). The
// realtime sessions end through a revocation of the player's tokens
// (revokeTokens), stored with the audit record and mirrored to the nodes.
func (s *Service) LogoutPlayerEverywhere(ctx context.Context, a *Actor, playerID string) (int, error) {
	if err := checkPlayerID(playerID); err != nil {
		return 0, err
	}
	var n int
	o := op{action: "player.logout_all", perm: tandem.PermPlayersBan, targetType: "player", targetID: playerID}
	err := s.update(ctx, a, o, func(tx tandem.Tx, rec *tandem.AuditRecord) (err error) {
		if _, err = tx.Player(ctx, playerID); err != nil {
			return err
		}
		if n, err = tx.DeletePlayerSessions(ctx, playerID); err != nil {
			return err
		}
		r := revocation(playerID, s.now())
		if err := tx.PutRevocation(ctx, &r); err != nil {
			return err
		}
		rec.After = auditJSON(map[string]any{"sessions_ended": n, "tokens_issued_before": r.IssuedBefore})
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.wakeJob(ctx, jobBans)
	return n, nil
}

// revocation is the revocation of the player's realtime tokens written at
// now. A token's iat has whole seconds, so IssuedBefore is now rounded up
// to the next whole second: a token issued in the second of the logout,
// even just before it, is refused too. The price is that a token the
// player gets in the rest of that second is refused as well; their client
// logs in again and gets one from the next second.
func revocation(playerID string, now time.Time) tandem.Revocation {
	before := now.Truncate(time.Second).Add(time.Second)
	// The last token the revocation refuses expires MaxTokenLifetime after
	// its issue; the minute covers clock skew between web and nodes.
	return tandem.Revocation{PlayerID: playerID, IssuedBefore: before, ExpiresAt: before.Add(tandem.MaxTokenLifetime + time.Minute)}
}

// EditPlayer changes a player's display name or matchmaking properties
// (players:write). The audit record keeps the properties (they decide
// fairness) but only that the name changed.
func (s *Service) EditPlayer(ctx context.Context, a *Actor, playerID string, e PlayerEdit) (*tandem.PlayerAccount, error) {
	if err := checkPlayerID(playerID); err != nil {
		return nil, err
	}
	var fields []tandem.FieldError
	if e.DisplayName != nil {
		fields = append(fields, checkName("display_name", *e.DisplayName, maxDisplayNameLen)...)
	}
	if e.MM != nil {
		fields = append(fields, checkMM("mm", e.MM)...)
	}
	if err := tandem.Invalid(fields); err != nil {
		return nil, err
	}
	var p *tandem.PlayerAccount
	o := op{action: "player.update", perm: tandem.PermPlayersWrite, targetType: "player", targetID: playerID}
	err := s.update(ctx, a, o, func(tx tandem.Tx, rec *tandem.AuditRecord) (err error) {
		if p, err = livePlayer(ctx, tx, playerID); err != nil {
			return err
		}
		before, after := map[string]any{}, map[string]any{}
		if e.DisplayName != nil && *e.DisplayName != p.DisplayName {
			p.DisplayName = *e.DisplayName
			after["display_name_changed"] = true
		}
		if e.MM != nil && !maps.Equal(e.MM, p.MM) {
			before["mm"], after["mm"] = mmOrEmpty(p.MM), mmOrEmpty(e.MM)
			p.MM = maps.Clone(e.MM)
			if len(p.MM) == 0 {
				p.MM = nil
			}
		}
		p.UpdatedAt = s.now()
		rec.Before, rec.After = auditJSON(before), auditJSON(after)
		return tx.UpdatePlayer(ctx, p)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func mmOrEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// AddPlayerNote adds an admin's note to a player's page (players:write).
// The note is personal data of a kind: the audit record names it by id.
func (s *Service) AddPlayerNote(ctx context.Context, a *Actor, playerID, text string) (*tandem.PlayerNote, error) {
	if err := checkPlayerID(playerID); err != nil {
		return nil, err
	}
	if n := utf8.RuneCountInString(text); n == 0 || n > maxNoteLen || !validText(text) {
		return nil, tandem.Invalid([]tandem.FieldError{{Field: "text", Message: "write 1 to 2000 characters"}})
	}
	n := &tandem.PlayerNote{PlayerID: playerID, Text: text, CreatedAt: s.now()}
	if a != nil {
		n.AdminName = a.Name
		if a.Kind == tandem.ActorAdmin {
			n.AdminID = a.ID
		}
	}
	o := op{action: "player.note", perm: tandem.PermPlayersWrite, targetType: "player", targetID: playerID}
	err := s.update(ctx, a, o, func(tx tandem.Tx, rec *tandem.AuditRecord) error {
		if _, err := livePlayer(ctx, tx, playerID); err != nil {
			return err
		}
		if err := tx.CreatePlayerNote(ctx, n); err != nil {
			return err
		}
		rec.After = auditJSON(map[string]any{"note": n.ID})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}
