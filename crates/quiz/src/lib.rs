//! The quiz domain: questions, prompts, strict checking of model output, and the generation, validation and emoji-regeneration handlers.
