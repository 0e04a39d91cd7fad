// Command tandem is the Tandem program with the built-in room types. A game
// that adds its own room types, RPCs or hooks writes a main like this one
// with its app.Options (see examples/customgame).
package main

import "github.com/tandemhq/tandem/app"

func main() { app.Run(app.Options{}) }
