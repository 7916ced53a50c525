"""The help-the-farmers mall (助农商城): products of assistance regions sold to members,
with the union's subsidy and the members' vouchers, paid through WeChat Pay JSAPI.

- :mod:`.catalog`: products and their SKUs (operators), the shelf members browse;
- :mod:`.cart`: each member's cart, kept on the server;
- :mod:`.holds`: what an order holds (stock, subsidy, voucher), taken at checkout and
  given back exactly once;
- :mod:`.checkout`: an order priced from our records (a hot operation of the writer);
- :mod:`.payment`: WeChat Pay JSAPI, the payment notification, late payments asked for,
  unpaid orders closed, and the sweep that moves orders on with time;
- :mod:`.fulfilment`: shipping, receipt, completion;
- :mod:`.refunds`: refunds requested, approved, sent, and confirmed by notification;
- :mod:`.reports`: sales by assistance region and by union (XLSX).
"""
