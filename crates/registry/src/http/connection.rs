//! One client connection: read a head, call the handler, write the response, repeat.
