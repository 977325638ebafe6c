"""The demo tenant, shared/data/demo-snapshot.json, and the ids tests name in it.

One place for the path and the ids, so a test says `E3_BASE` instead of a guid and a changed
demo is fixed here once; tests/test_demo_tenant.py checks each id against the snapshot.
"""

from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "shared" / "data" / "demo-snapshot.json"

# Groups, named after their displayName
E3_BASE = "3fba3687-b188-5d3f-abfd-25fd068d74b0"  # Licensing_Office365_E3_Base (synced)
E3_TEAMS = "69b30a84-e87c-56a4-8a6c-5316f6e3de6a"  # Licensing_Office365_E3_Teams (synced)
EMS_E3 = "e7a5fa59-c4c8-5560-90c6-cd4b354f041d"  # Licensing_Office365_EMS_E3 (cloud-only)
SALES_TEAM = "786e3d01-f781-5ac6-ae1a-55f97a0871a0"  # Sales_Team: no licenses

# SKUs, named after their skuPartNumber, and a service plan, after its servicePlanName
ENTERPRISEPACK = "6fd2c87f-b296-42f0-b197-1e91e994b900"  # Office 365 E3
EMS = "efccb6f7-5641-4e0e-bd10-b4976e1bf68e"  # Enterprise Mobility + Security E3
EXCHANGE_S_ENTERPRISE = "efb87545-963c-4e0d-99df-69c6916d9eb0"  # ENTERPRISEPACK's mailbox

# Users, by first name
ADELE = "5b3bdede-7059-50e0-a04b-b5bcb87ef90e"  # Adele Vance: in E3 Base, pending in Graph
ALANNAH = "ff707b75-7458-5566-aced-898961454deb"  # Alannah Shaw: E3 from Base only
ALEX = "48624e5a-e8ec-5c9f-94ac-5467a3a4b832"  # Alex Wilber: stale E3 state from Base, not a member
DIEGO = "609f23d0-ad3c-59fa-a1a7-122bbdc7e855"  # Diego Siciliani: in E3 Base
GRADY = "38075db3-9ff8-5eaa-a2ff-99b3a9f2a1fd"  # Grady Archie: E3 from Teams ("Others")
IRVIN = "fac50b8d-a0c6-56c9-831d-afb9cc348fa6"  # Irvin Sayers: EMS CountViolation
JONI = "5396954b-1be4-5425-a8a1-4996be80c58f"  # Joni Sherman: EMS CountViolation
LYNNE = "b24b2b9d-888c-5e29-aa8a-e1c16f386e32"  # Lynne Robbins: no licenses, only in Sales_Team
MEGAN = "c9de3744-4f46-5deb-a7be-239cc5f1b4a5"  # Megan Bowen
NESTOR = "d00f724a-f2e9-543f-9157-db925a590292"  # Nestor Wilke: UniquenessViolation
