package agent_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/maxwellhq/maxwell/agent"
	"github.com/maxwellhq/maxwell/internal/hub"
)

// thisProcess is a stand-in for Maxwell's cell manager: it places this
// process, and only it, in cell "cell-a".
type thisProcess struct{}

func (thisProcess) CellForPID(pid int) (string, bool) { return "cell-a", pid == os.Getpid() }

func Example() {
	// Scaffolding: a host listening where MAXWELL_AGENT_SOCKET points.
	dir, err := os.MkdirTemp("", "agent-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "agent.sock")
	h, err := hub.Listen(sock, thisProcess{}, hub.Options{})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error)
	go func() { served <- h.Serve(ctx) }()
	defer func() { stop(); <-served }()
	os.Setenv(agent.EnvSocket, sock)
	defer os.Unsetenv(agent.EnvSocket)

	// The agent: these few lines make any Go program one.
	c, err := agent.Dial(ctx, agent.FromEnv())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for n := uint64(1); n <= 3; n++ {
		if err := c.Report(ctx, map[string]uint64{"primes": n * 10}); err != nil {
			log.Fatal(err)
		}
	}

	counters, _, _ := h.Counters(c.Cell())
	fmt.Println(c.Cell(), counters["primes"])
	// Output: cell-a 30
}

func ExampleClient_Bid() {
	// Scaffolding: a host that runs auctions, and its engine's first tick.
	dir, err := os.MkdirTemp("", "agent-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "agent.sock")
	h, err := hub.Listen(sock, thisProcess{}, hub.Options{Auctions: true})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error)
	go func() { served <- h.Serve(ctx) }()
	defer func() { stop(); <-served }()

	// The agent asks for ticks.
	c, err := agent.Dial(ctx, agent.Config{Transport: agent.Unix, Address: sock, Bidding: true})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// The engine opens auction 1: slots cost 1000 µJ, the host is warm.
	err = h.OpenAuction(1, func(string) (hub.TickInfo, bool) {
		return hub.TickInfo{Reserve: 1500, Multiplier: 1.5, SlotEnergy: 1000, Balance: 1e6}, true
	})
	if err != nil {
		log.Fatal(err)
	}

	// The agent values a slot at twice its energy and wants two.
	t := <-c.Ticks()
	if value := 2 * t.SlotEnergy; t.Reserve <= value {
		if err := c.Bid(ctx, t.Tick, value, 2); err != nil {
			log.Fatal(err)
		}
	}

	fmt.Println(h.CloseAuction(1))
	// Output: map[cell-a:{2000 2}]
}
