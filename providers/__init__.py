"""Payment providers shipped with paymux (`paymux.providers.<name>`) and the provider-author kit."""
