//! Zero-copy file responses: sendfile(2) from the page cache to a TCP socket.
