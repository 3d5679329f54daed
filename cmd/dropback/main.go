// Command dropback backs up whole disks: self-hosted hosts through its
// embedded engine, DigitalOcean Droplets through the DigitalOcean API.
package main

import (
	"os"

	"github.com/dropback/dropback/commands"
)

func main() {
	os.Exit(commands.Main())
}
