"""Which runtime library release ships, and the wheels it comes in.

``lib_choice.resolve`` decides the release (the one place that does: verify, compare and package
ask it), judging each candidate wheel by what it needs (``audit``, an ELF audit replaying ld.so's
search, ``loader``) once slimmed as it will ship (``slim``); ``wheels`` fetches and installs wheels
for a target (pip injected), each checked before it is unpacked (``zip_check``). Below the steps,
so verify can ask it and package can verify again.
"""
