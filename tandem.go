// Package tandem holds Tandem's domain types and interfaces: the error type
// and its code table, players and their realtime token claims, room
// descriptions. It imports nothing of the project; every other package
// builds on it.
package tandem

// Version is the program version; the build may override it with -ldflags.
const Version = "0.1.0-dev"
