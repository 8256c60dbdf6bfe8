"""The contracts every service imports: NATS names (`subjects`), message models (`messages`),
settings (`settings`) and the error tree (`errors`). Imports nothing else of this project."""
