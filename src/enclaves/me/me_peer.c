/* Remote attestation between Migration Enclaves and the key hand-over (being written). */
