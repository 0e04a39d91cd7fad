package faultproxy

// QueuedBytes exposes how many bytes direction d holds inside the proxy, so
// tests can tell bytes held by the proxy from bytes held back in TCP.
func (c *Conn) QueuedBytes(d Direction) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pipes[d].queuedBytes
}
