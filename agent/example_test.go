package agent_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/maxwellhq/maxwell/agent"
	"github.com/maxwellhq/maxwell/agent/proto"
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

	b := h.CloseAuction(1)["cell-a"]
	fmt.Println(b.Units, "slots at", b.Price)
	// Output: 2 slots at 2000 credits
}

// ExampleRun makes a Go program an agent with agent.Run: its work reports
// cumulative counters, and Run carries them to the host, declaring which of
// them is the program's useful work.
func ExampleRun() {
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

	// The program: its work, and one call.
	work := func(ctx context.Context, report func(map[string]uint64)) error {
		for n := uint64(1); n <= 3; n++ {
			report(map[string]uint64{"pages": n * 100})
		}
		return nil
	}
	cfg := agent.FromEnv()
	cfg.Hello = proto.Hello{Kind: "crawler", Useful: &proto.Useful{Counter: "pages", Unit: "page"}}
	if err := agent.Run(ctx, agent.RunOptions{Config: cfg, Work: work}); err != nil {
		log.Fatal(err)
	}

	s := h.Snapshot()["cell-a"]
	fmt.Println(s.Counters["pages"], s.Useful.Unit)
	// Output: 300 page
}
