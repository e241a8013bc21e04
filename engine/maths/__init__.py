"""Pure maths the pipeline's parts share: position accounting, a bar's price path,
round trips."""
