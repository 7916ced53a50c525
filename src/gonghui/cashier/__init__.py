"""The till page: a merchant's cashier redeems members' union vouchers from a phone."""
