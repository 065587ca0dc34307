"""ASC X12 837P (005010X222A1/A2) and 837I (005010X223A2/A3) to claim.submitted v1, validated with pyx12."""
