"""Socket.IO: who may listen to what (access), the server and its one publish path (hub),
fan-out between processes over Redis (broker), and draining sockets at shutdown (gate)."""
