"""Text plans: what of a chat message reaches a model, and how the translation is put back
together. Sentences (a maintained multilingual segmenter) with every separator kept, protected
spans (URLs, emails, @mentions, emoji, inline code) kept verbatim, pieces with nothing to
translate skipped, long sentences cut into chunks that fit the model. Pure text: it imports
`contracts` only; a model's token counter is handed in."""
