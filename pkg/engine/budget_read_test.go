package engine

// What tests read of the memory budget.

// Kept is what the lists last returned hold.
func (b *memBudget) Kept() int64 {
	b.mu.Lock()
	kept := make([]*memHold, 0, len(b.kept))
	for _, h := range b.kept {
		kept = append(kept, h)
	}
	b.mu.Unlock()
	var n int64
	for _, h := range kept {
		n += h.size()
	}
	return n
}

// Held is what is reserved now.
func (b *memBudget) Held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}

// Peak is the most that was held at once.
func (b *memBudget) Peak() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}
