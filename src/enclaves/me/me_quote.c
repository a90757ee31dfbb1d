/* Quote verification inside the Migration Enclave (being written). */
