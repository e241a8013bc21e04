"""The paper-trading engine.

Money is `Decimal` everywhere. Python's default context keeps 28 significant digits,
which a fee on a large position with eight-place prices and sizes can exceed (the
product of three eight-place figures on 100,000 of capital has over 28 digits), and
then rounds silently. The engine computes with 60 digits in every thread, so sums of
prices, sizes and fees stay exact.
"""

import decimal

MONEY_DIGITS = 60

decimal.DefaultContext.prec = MONEY_DIGITS  # threads started from now on
decimal.getcontext().prec = MONEY_DIGITS  # this thread
