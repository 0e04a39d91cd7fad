package tandem

import (
	"slices"
	"time"
)

// Permission is one right of an admin: a resource and an action, written
// "resource:action". Every admin route and service method names the one it
// needs.
type Permission string

// The permissions. The list is closed: roles may hold only these.
const (
	PermPlayersRead       Permission = "players:read"
	PermPlayersBan        Permission = "players:ban"
	PermPlayersWrite      Permission = "players:write"
	PermRoomsRead         Permission = "rooms:read"
	PermRoomsManage       Permission = "rooms:manage"
	PermMatchmakingManage Permission = "matchmaking:manage"
	PermContentWrite      Permission = "content:write"
	PermCommerceWrite     Permission = "commerce:write"
	PermCommerceRefund    Permission = "commerce:refund"
	PermReservationsWrite Permission = "reservations:write"
	PermLedgerRead        Permission = "ledger:read"
	PermLedgerApprove     Permission = "ledger:approve"
	PermStatsRead         Permission = "stats:read"
	PermRolesManage       Permission = "roles:manage"
	PermAdminsManage      Permission = "admins:manage"
	PermAuditRead         Permission = "audit:read"
)

// PermissionInfo describes a permission for the roles page and the docs.
type PermissionInfo struct {
	Permission  Permission
	Description string
	// RequiresMFA: an admin whose role holds it must have TOTP enrolled
	// before doing anything else.
	RequiresMFA bool
}

// permissionTable is the one list of permissions, in display order.
var permissionTable = []PermissionInfo{
	{PermPlayersRead, "see players and their sessions", false},
	{PermPlayersBan, "ban and unban players, end their sessions", false},
	{PermPlayersWrite, "edit players' names, matchmaking properties and notes", false},
	{PermRoomsRead, "see rooms and realtime nodes", false},
	{PermRoomsManage, "close rooms and kick players", false},
	{PermMatchmakingManage, "create, edit and delete matchmaking queues", false},
	{PermContentWrite, "edit content", false},
	{PermCommerceWrite, "edit products and prices", false},
	{PermCommerceRefund, "refund purchases", true},
	{PermReservationsWrite, "create and cancel reservations", false},
	{PermLedgerRead, "read the ledger and settlements", false},
	{PermLedgerApprove, "approve ledger postings and settlements", true},
	{PermStatsRead, "read statistics", false},
	{PermRolesManage, "create, edit and delete roles", true},
	{PermAdminsManage, "create, edit and disable admins", true},
	{PermAuditRead, "read the audit log", false},
}

// Permissions returns every permission with its description, in display order.
func Permissions() []PermissionInfo { return slices.Clone(permissionTable) }

// Valid reports whether p is a known permission.
func (p Permission) Valid() bool {
	return slices.ContainsFunc(permissionTable, func(i PermissionInfo) bool { return i.Permission == p })
}

// RequiresMFA reports whether holding p makes TOTP mandatory.
func (p Permission) RequiresMFA() bool {
	i := slices.IndexFunc(permissionTable, func(i PermissionInfo) bool { return i.Permission == p })
	return i >= 0 && permissionTable[i].RequiresMFA
}

// Role is a named set of permissions. Every admin and admin API key has
// exactly one role.
type Role struct {
	ID          int64
	Name        string
	Description string
	// Permissions are sorted and unique.
	Permissions []Permission
	// Builtin roles are created by migration and cannot be edited or deleted.
	Builtin   bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Has reports whether the role grants p.
func (r *Role) Has(p Permission) bool { return r != nil && slices.Contains(r.Permissions, p) }

// RequiresMFA reports whether the role holds a permission that makes TOTP
// mandatory.
func (r *Role) RequiresMFA() bool {
	return r != nil && slices.ContainsFunc(r.Permissions, Permission.RequiresMFA)
}

// The built-in roles' names.
const (
	RoleOwner    = "owner"
	RoleOperator = "operator"
	RoleSupport  = "support"
	RoleFinance  = "finance"
	RoleViewer   = "viewer"
)

// BuiltinRoles returns the roles every database starts with (IDs unset).
// Each migration set inserts exactly these; a storetest test compares them.
func BuiltinRoles() []Role {
	all := make([]Permission, len(permissionTable))
	for i, p := range permissionTable {
		all[i] = p.Permission
	}
	roles := []Role{
		{Name: RoleOwner, Description: "everything", Permissions: all},
		{Name: RoleOperator, Description: "runs the game: players, rooms, content, reservations", Permissions: []Permission{
			PermPlayersRead, PermPlayersBan, PermPlayersWrite, PermRoomsRead, PermRoomsManage, PermMatchmakingManage,
			PermContentWrite, PermReservationsWrite, PermStatsRead, PermAuditRead,
		}},
		{Name: RoleSupport, Description: "helps players", Permissions: []Permission{
			PermPlayersRead, PermPlayersBan, PermPlayersWrite, PermRoomsRead, PermReservationsWrite,
		}},
		{Name: RoleFinance, Description: "money: commerce, refunds, ledger", Permissions: []Permission{
			PermCommerceWrite, PermCommerceRefund, PermLedgerRead, PermLedgerApprove, PermStatsRead,
		}},
		{Name: RoleViewer, Description: "reads everything, changes nothing", Permissions: []Permission{
			PermPlayersRead, PermRoomsRead, PermLedgerRead, PermStatsRead, PermAuditRead,
		}},
	}
	for i := range roles {
		roles[i].Builtin = true
		slices.Sort(roles[i].Permissions)
	}
	return roles
}

// Admin is a person who operates the game through the admin UI, the admin
// API or the CLI.
type Admin struct {
	ID int64
	// Name is both the login and what pages show: 1–64 printable characters,
	// unique. It is only ever text (an admin may be named "<b>").
	Name   string
	RoleID int64
	// Disabled admins cannot log in; disabling one ends its sessions.
	Disabled bool
	// PasswordHash is an argon2id PHC string.
	PasswordHash      string
	PasswordChangedAt time.Time
	// MFASecret is the base32 TOTP secret; empty when MFA is not enrolled.
	// MFAPending is a secret offered for enrolment and not yet confirmed.
	MFASecret  string
	MFAPending string
	// MFALastStep is the last TOTP time step accepted, so a code is
	// accepted once.
	MFALastStep int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// MFAEnabled reports whether the admin has TOTP enrolled.
func (a *Admin) MFAEnabled() bool { return a.MFASecret != "" }

// AdminSession is a logged-in browser. The cookie holds a random token; the
// store holds only its SHA-256.
type AdminSession struct {
	TokenHash []byte
	AdminID   int64
	CreatedAt time.Time
	// LastSeenAt is refreshed (coarsely) on use; the session ends after an
	// idle expiry measured from it.
	LastSeenAt time.Time
	// ExpiresAt is the absolute end, whatever the activity.
	ExpiresAt time.Time
	// MFAPassed is set once the admin has given a TOTP or recovery code in
	// this session (or has no MFA to give).
	MFAPassed bool
	// ReauthAt is when the admin last confirmed their password (login counts).
	ReauthAt  time.Time
	Address   string
	UserAgent string
}

// APIKey lets a program call the admin API with a role's permissions. The
// secret is shown once at creation; the store holds its SHA-256.
type APIKey struct {
	ID     int64
	Name   string
	RoleID int64
	// Prefix is the start of the secret, shown to tell keys apart.
	Prefix     string
	Hash       []byte
	CreatedBy  int64
	CreatedAt  time.Time
	LastUsedAt time.Time // zero if never used
	RevokedAt  time.Time // zero while the key is valid
}

// Revoked reports whether the key has been revoked.
func (k *APIKey) Revoked() bool { return !k.RevokedAt.IsZero() }
