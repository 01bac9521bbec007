#!/usr/bin/env python3
"""Deterministic SQL-dump-like text stream (mysqldump style, extended INSERTs).

usage: gen_sql.py SIZE_BYTES [SEED] > dump.sql

The values are pseudo-random but shaped like a real shop database (names, e-mails,
addresses, timestamps, prices, status words, free-text comments, hex tokens), so the
stream compresses roughly like a real dump (zstd -3: about 4-6x). Same SIZE and SEED
give the same bytes on every machine (Python's Mersenne Twister is specified).
"""
import random
import sys
import time

FIRST = """James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara
Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty
Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua Michelle
Kenneth Carol Kevin Amanda Brian Dorothy George Melissa Timothy Deborah Ronald Stephanie Edward
Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia Jacob Kathleen Gary Amy Nicholas Angela Eric Shirley
Jonathan Anna Stephen Brenda Larry Pamela Justin Emma Scott Nicole Brandon Helen Benjamin Samantha
Samuel Katherine Gregory Christine Alexander Debra Frank Rachel Patrick Carolyn Raymond Janet Jack
Catherine Dennis Maria Jerry Heather Tyler Diane Aaron Ruth Jose Julie Adam Olivia Nathan Joyce Henry
Virginia Douglas Victoria Zachary Kelly Peter Lauren Kyle Christina Ethan Joan Walter Evelyn Noah
Judith Jeremy Megan Christian Andrea Keith Cheryl Roger Hannah Terry Jacqueline Gerald Martha Harold
Gloria Sean Teresa Austin Ann Carl Sara Arthur Madison Lawrence Frances Dylan Kathryn Jesse Janice
Jordan Jean Bryan Abigail Billy Alice Joe Judy Bruce Sophia Gabriel Grace Logan Denise Albert Amber
Willie Doris Alan Marilyn Juan Danielle Wayne Beverly Elijah Isabella Randy Theresa Roy Diana Vincent
Natalie Ralph Brittany Eugene Charlotte Russell Marie Bobby Kayla Mason Alexis Philip Lori""".split()
LAST = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez
Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green
Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz
Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan
Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood
James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster
Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales Fisher
Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace Moreno
West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall
Owens Harrison Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker
Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz
Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice
Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley""".split()
CITIES = """Springfield Riverside Franklin Greenville Bristol Clinton Fairview Salem Madison Georgetown
Arlington Ashland Dover Oxford Jackson Burlington Manchester Milton Newport Auburn Dayton Lexington
Hudson Kingston Marion Mount_Vernon Oakland Centerville Winchester Cleveland Hamilton Chester Lebanon
Portland Bloomington Columbia Jamestown Lancaster Princeton Richmond Troy Williamsburg Shelbyville
Berlin Hamburg Munich Cologne Frankfurt Stuttgart Leipzig Dresden Hanover Nuremberg Lyon Marseille
Toulouse Nice Nantes Lille Rennes Reims Porto Lisbon Madrid Seville Valencia Bilbao Turin Milan Naples
Bologna Florence Vienna Graz Linz Zurich Geneva Basel Bern Utrecht Leiden Ghent Antwerp Bruges""".split()
STREETS = """Main Oak Pine Maple Cedar Elm Washington Lake Hill Park Walnut Sunset Lincoln Jackson Church
River Highland Forest Meadow Spring Ridge Valley Mill Center Chestnut Willow Railroad Cherry Dogwood
Lakeview Jefferson Adams Madison Franklin Grove Hickory Birch Sycamore Laurel""".split()
STYPE = ["St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Ct", "Way", "Pl", "Terrace"]
DOMAINS = ["example.com", "mail.example.org", "corp.example.net", "shop.example", "inbox.example.com",
           "users.example.org", "post.example.net", "webmail.example"]
STATUS = ["pending", "paid", "shipped", "delivered", "cancelled", "refunded", "on_hold", "returned"]
EVENTS = ["login", "logout", "view_product", "add_to_cart", "remove_from_cart", "checkout_start",
          "checkout_complete", "password_reset", "search", "review_posted", "wishlist_add", "coupon_apply"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
          "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
          "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{w}.1 Safari/605.1.15",
          "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{w} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
          "curl/8.{w}.0", "python-requests/2.{v}.0"]
WORDS = """the a and of to in is it that for on with as was be at by this have from or one had not but
what all were when we there can an your which their said if do will each about how up out them then
she many some so these would other into has more her two like him see time could no make than first
been its who now people my made over did down only way find use may water long little very after
words called just where most know get through back much before go good new write our used me man too
any day same right look think also around another came come work three word must because does part
even place well such here take why things help put years different away again off went old number
great tell men say small every found still between name should home big give air line set own under
read last never us left end along while might next sound below saw something thought both few those
always looked show large often together asked house world going want school important until form food
keep children feet land side without boy once animals life enough took sometimes four head above kind
began almost live page got earth need far hand high year mother light parts country father let night
following picture being study second eyes soon times story boys since white days paper hard near
sentence better best across during today others however sure means knew its try told young miles sun
ways thing whole hear example heard several change answer room sea against top turned learn point city
play toward five using himself usually product order delivery shipped quality price customer service
package arrived broken excellent recommend refund return size color fits quickly slow support thanks""".split()
PRODUCTS = ["Widget", "Gadget", "Sprocket", "Gizmo", "Doohickey", "Thingamajig", "Bracket", "Adapter",
            "Cable", "Charger", "Lamp", "Chair", "Desk", "Mug", "Bottle", "Backpack", "Notebook", "Pen",
            "Headphones", "Keyboard", "Mouse", "Monitor", "Speaker", "Router", "Drive", "Sensor"]
ADJ = ["Deluxe", "Compact", "Pro", "Mini", "Ultra", "Classic", "Eco", "Smart", "Heavy-Duty", "Portable",
       "Wireless", "Ergonomic", "Premium", "Basic", "Advanced", "Vintage", "Modern", "Rugged"]


def main():
    size = int(sys.argv[1])
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 20240601
    r = random.Random(seed)
    ri = r.randrange
    ch = r.choice
    out = sys.stdout.buffer
    written = 0

    def emit(s):
        nonlocal written
        b = s.encode()
        out.write(b)
        written += len(b)

    clock = [1420070400]  # 2015-01-01, advances a few seconds per row like real insert order

    def ts():
        clock[0] += ri(8)
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(clock[0]))

    def text(n):
        return " ".join(ch(WORDS) for _ in range(n))

    emit("-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n-- Host: localhost    Database: shop\n"
         "-- ------------------------------------------------------\n-- Server version\t8.0.36\n\n"
         "/*!40101 SET NAMES utf8mb4 */;\n/*!40103 SET TIME_ZONE='+00:00' */;\n"
         "/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;\n\n")
    schema = {
        "customers": "  `id` bigint NOT NULL AUTO_INCREMENT,\n  `first_name` varchar(64) NOT NULL,\n"
                     "  `last_name` varchar(64) NOT NULL,\n  `email` varchar(255) NOT NULL,\n"
                     "  `street` varchar(255) DEFAULT NULL,\n  `city` varchar(64) DEFAULT NULL,\n"
                     "  `zip` char(5) DEFAULT NULL,\n  `phone` varchar(32) DEFAULT NULL,\n"
                     "  `created_at` datetime NOT NULL,\n  `api_token` char(32) DEFAULT NULL,\n"
                     "  PRIMARY KEY (`id`),\n  UNIQUE KEY `email` (`email`)",
        "orders": "  `id` bigint NOT NULL AUTO_INCREMENT,\n  `customer_id` bigint NOT NULL,\n"
                  "  `status` varchar(16) NOT NULL,\n  `total` decimal(10,2) NOT NULL,\n"
                  "  `currency` char(3) NOT NULL,\n  `created_at` datetime NOT NULL,\n"
                  "  `updated_at` datetime NOT NULL,\n  `note` text,\n  PRIMARY KEY (`id`),\n"
                  "  KEY `customer_id` (`customer_id`)",
        "order_items": "  `id` bigint NOT NULL AUTO_INCREMENT,\n  `order_id` bigint NOT NULL,\n"
                       "  `sku` varchar(32) NOT NULL,\n  `product` varchar(128) NOT NULL,\n"
                       "  `qty` int NOT NULL,\n  `unit_price` decimal(10,2) NOT NULL,\n"
                       "  PRIMARY KEY (`id`),\n  KEY `order_id` (`order_id`)",
        "events": "  `id` bigint NOT NULL AUTO_INCREMENT,\n  `customer_id` bigint DEFAULT NULL,\n"
                  "  `kind` varchar(32) NOT NULL,\n  `ip` varchar(45) NOT NULL,\n"
                  "  `user_agent` varchar(255) DEFAULT NULL,\n  `at` datetime NOT NULL,\n"
                  "  `payload` json DEFAULT NULL,\n  PRIMARY KEY (`id`)",
    }

    def customer(i):
        f, l = ch(FIRST), ch(LAST)
        return "(%d,'%s','%s','%s.%s%d@%s','%d %s %s','%s','%05d','+1-%03d-%03d-%04d','%s',%s)" % (
            i, f, l, f.lower(), l.lower(), ri(1000), ch(DOMAINS), 1 + ri(9999), ch(STREETS), ch(STYPE),
            ch(CITIES), ri(100000), 200 + ri(800), ri(1000), ri(10000), ts(),
            "NULL" if ri(4) else "'%032x'" % r.getrandbits(128))

    def order(i):
        note = "NULL" if ri(3) else "'%s'" % text(4 + ri(14))
        t0 = ts()
        return "(%d,%d,'%s',%d.%02d,'%s','%s','%s',%s)" % (
            i, 1 + i // 3 + ri(50), ch(STATUS), ri(300), ch((0, 50, 95, 99, 49, 0)), ch(("USD", "USD", "EUR", "GBP")), t0, t0 if ri(2) else ts(), note)

    def item(i):
        return "(%d,%d,'%s-%05d','%s %s %s',%d,%d.%02d)" % (
            i, 1 + i // 3, ch(PRODUCTS)[:3].upper(), ri(2000), ch(ADJ), ch(PRODUCTS),
            ch(("S", "M", "L", "XL", "v2", "2024", "Black", "White", "Blue")), ch((1, 1, 1, 2, 3)), ri(200), ch((0, 50, 95, 99)))

    def event(i):
        ag = ch(AGENTS).format(v=90 + ri(40), w=ri(10))
        return ("(%d,%d,'%s','%d.%d.%d.%d','%s','%s','{\"session\": \"%s\", \"page\": \"/%s/%s\", "
                "\"ms\": %d, \"ok\": %s}')") % (
            i, 1 + ri(200000), ch(EVENTS), 10 + ri(3), ri(4), ri(256), ri(256), ag, ts(),
            sess[i // 20 % len(sess)], ch(WORDS), ch(PRODUCTS).lower(), ri(5000), ch(("true", "false")))

    sess = ["%016x" % r.getrandbits(64) for _ in range(4096)]
    gens = [("customers", customer), ("orders", order), ("order_items", item), ("events", event)]
    ids = {t: 0 for t, _ in gens}
    rnd = 0
    while written < size:
        t, g = gens[rnd % len(gens)]
        if rnd < len(gens):
            emit("--\n-- Table structure for table `%s`\n--\n\nDROP TABLE IF EXISTS `%s`;\n"
                 "CREATE TABLE `%s` (\n%s\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n\n"
                 "LOCK TABLES `%s` WRITE;\n" % (t, t, t, schema[t], t))
        # a block of extended INSERTs per table, then move to the next table
        for _ in range(40):
            rows = []
            for _ in range(500):
                ids[t] += 1
                rows.append(g(ids[t]))
            emit("INSERT INTO `%s` VALUES %s;\n" % (t, ",".join(rows)))
            if written >= size:
                break
        rnd += 1
    emit("UNLOCK TABLES;\n-- Dump completed\n")


if __name__ == "__main__":
    main()
