/** The CLI follows events with the Effect SDK's stream (one implementation for both). */
export { EventStreamError, sessionEvents, type StreamedEvent } from "@paws/sdk/effect"
