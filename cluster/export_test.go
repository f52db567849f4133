package cluster

// crash stops the node as a killed process would: no more heartbeats or listening, and its
// rows left in the store.
func (s *Store) crash() {
	s.once.Do(func() {
		s.stop()
		s.wg.Wait()
		s.pool.Close()
	})
}
