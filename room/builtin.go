package room

// BuiltinTypes returns the room types every Tandem node offers: relay and
// arena. A game adds its own types next to them.
func BuiltinTypes() []Type {
	return []Type{RelayType(), ArenaType()}
}
