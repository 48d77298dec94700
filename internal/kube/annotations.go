package kube

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/maxwellhq/maxwell/internal/units"
)

// The pod annotations by which a pod opts in, and the node annotations,
// label and taint the agent publishes.
const (
	// Prefix starts every key Maxwell reads or writes.
	Prefix = "maxwell.dev/"

	// AnnotationWallet is the pod's endowment in credits; a pod opts in
	// by carrying it.
	AnnotationWallet = Prefix + "wallet"
	// AnnotationMaxBid is the standing bid in credits per CPU slot that
	// the node's daemon makes for the pod every tick; absent or 0: the
	// pod bids for itself through the agent socket.
	AnnotationMaxBid = Prefix + "max-bid"
	// AnnotationUnits is the number of slots the standing bid asks for
	// (default 1); it needs a max-bid.
	AnnotationUnits = Prefix + "units"
	// AnnotationTap is income in credits per second.
	AnnotationTap = Prefix + "tap"
	// AnnotationOnInsolvency is "evict" (the default) or "hibernate".
	AnnotationOnInsolvency = Prefix + "on-insolvency"

	// AnnotationPrice is the node's reserve price, credits per slot.
	AnnotationPrice = Prefix + "price"
	// AnnotationTemperature is the node's temperature in °C.
	AnnotationTemperature = Prefix + "temperature"
	// AnnotationNode is the node's whole report as JSON (NodeAnnotation).
	AnnotationNode = Prefix + "node"
	// LabelPriceBand is the node's price band: low, mid or high.
	LabelPriceBand = Prefix + "price-band"
	// TaintHot is the NoSchedule taint a node carries while its price
	// stays at its ceiling.
	TaintHot = Prefix + "hot"
)

// Insolvency is what happens to a pod whose wallet runs dry.
type Insolvency string

// The insolvency policies of pods.
const (
	// Evict asks Kubernetes to evict the pod, through the Eviction API
	// (which respects PodDisruptionBudgets).
	Evict Insolvency = "evict"
	// Hibernate freezes the pod until it is funded.
	Hibernate Insolvency = "hibernate"
)

// ErrAnnotation means a pod's maxwell.dev annotations are malformed.
var ErrAnnotation = errors.New("bad maxwell.dev annotation")

// maxUnits bounds AnnotationUnits, as the daemon's API does.
const maxUnits = 4096

// Terms are what a pod's annotations ask for.
type Terms struct {
	Wallet       units.Credits
	MaxBid       units.Credits
	Units        int
	Tap          units.Credits // per second
	OnInsolvency Insolvency
}

// ParseTerms reads a pod's annotations. It returns false if the pod has
// no maxwell.dev annotation at all (it has not opted in), and an error
// wrapping ErrAnnotation that names every bad one if they are malformed.
func ParseTerms(annotations map[string]string) (Terms, bool, error) {
	var keys []string
	for k := range annotations {
		if strings.HasPrefix(k, Prefix) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return Terms{}, false, nil
	}
	sort.Strings(keys)
	var bad []string
	credits := func(key string, required bool) units.Credits {
		v, ok := annotations[key]
		if !ok {
			if required {
				bad = append(bad, fmt.Sprintf("%s is missing (a pod opts in with a wallet in credits)", key))
			}
			return 0
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			bad = append(bad, fmt.Sprintf("%s=%q: want a whole number of credits, 0 or more", key, v))
			return 0
		}
		return units.Credits(n)
	}
	t := Terms{
		Wallet: credits(AnnotationWallet, true),
		MaxBid: credits(AnnotationMaxBid, false),
		Tap:    credits(AnnotationTap, false),
		Units:  1,
	}
	if v, ok := annotations[AnnotationUnits]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch {
		case err != nil || n < 1 || n > maxUnits:
			bad = append(bad, fmt.Sprintf("%s=%q: want 1 to %d CPU slots", AnnotationUnits, v, maxUnits))
		case annotations[AnnotationMaxBid] == "":
			bad = append(bad, fmt.Sprintf("%s without %s: units size the standing bid", AnnotationUnits, AnnotationMaxBid))
		default:
			t.Units = n
		}
	}
	switch v := annotations[AnnotationOnInsolvency]; Insolvency(strings.TrimSpace(v)) {
	case "", Evict:
		t.OnInsolvency = Evict
	case Hibernate:
		t.OnInsolvency = Hibernate
	default:
		bad = append(bad, fmt.Sprintf("%s=%q: want evict or hibernate", AnnotationOnInsolvency, v))
	}
	known := map[string]bool{AnnotationWallet: true, AnnotationMaxBid: true, AnnotationUnits: true, AnnotationTap: true, AnnotationOnInsolvency: true}
	for _, k := range keys {
		if !known[k] {
			bad = append(bad, fmt.Sprintf("%s: unknown (known: %s, %s, %s, %s, %s)", k, AnnotationWallet, AnnotationMaxBid, AnnotationUnits, AnnotationTap, AnnotationOnInsolvency))
		}
	}
	if len(bad) == 0 && t.Wallet == 0 && t.Tap == 0 {
		bad = append(bad, fmt.Sprintf("%s is 0 and there is no %s: the pod could never pay", AnnotationWallet, AnnotationTap))
	}
	if len(bad) == 0 && t.MaxBid > math.MaxInt64/maxUnits {
		bad = append(bad, fmt.Sprintf("%s=%d: too large", AnnotationMaxBid, t.MaxBid))
	}
	if len(bad) > 0 {
		return Terms{}, true, fmt.Errorf("%w: %s", ErrAnnotation, strings.Join(bad, "; "))
	}
	return t, true, nil
}
